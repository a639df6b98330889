"""job history

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 09:12:41.208311

Jobs that exist already get their creation and, when it is not ``queued`` any more, their
current state as their history: the changes in between were never recorded.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = (
    "INSERT INTO job_history (job_id, from_state, to_state, at, reason, attempt)"
    " SELECT id, NULL, 'queued', created_at, 'created', 0 FROM jobs",
    "INSERT INTO job_history (job_id, from_state, to_state, at, reason, attempt)"
    " SELECT id, NULL, state, updated_at, 'state when the history began', attempt"
    " FROM jobs WHERE state <> 'queued'",
)


def upgrade() -> None:
    # Before job_history exists: a rebuilt jobs table would take the rows that refer to it along.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_state", sa.String(length=16), nullable=True))

    op.create_table(
        "job_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_history_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_history")),
    )
    with op.batch_alter_table("job_history", schema=None) as batch_op:
        batch_op.create_index("ix_job_history_job", ["job_id", "id"], unique=False)

    for statement in BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table("job_history", schema=None) as batch_op:
        batch_op.drop_index("ix_job_history_job")

    op.drop_table("job_history")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("previous_state")
