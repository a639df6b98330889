"""imports into store_status publish in place

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 05:00:00.000000

An import into ``store_status`` writes its rows into the table itself, tagged with its job
(``import_job``), and publishes them in one short transaction; readers read the
``visible_store_status`` view. Its staging table goes. See ``ImportBatch`` and ``ImportFloor``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VISIBLE_STORE_STATUS = """
CREATE VIEW visible_store_status AS
SELECT s.id, s.store_id, s.status, s.timestamp_utc
FROM store_status s
JOIN import_floors f ON f.table_name = 'store_status'
LEFT JOIN import_batches b ON b.job_id = s.import_job
WHERE (s.import_job IS NULL AND s.id > f.floor_id) OR b.seq > f.floor_seq
"""


def upgrade() -> None:
    op.create_table(
        "import_batches",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("table_name", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_import_batches")),
    )
    floors = op.create_table(
        "import_floors",
        sa.Column("table_name", sa.String(length=32), nullable=False),
        sa.Column("floor_id", sa.BigInteger(), nullable=False),
        sa.Column("floor_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("swept_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", name=op.f("pk_import_floors")),
    )
    op.bulk_insert(
        floors,
        [
            {
                "table_name": "store_status",
                "floor_id": 0,
                "floor_seq": 0,
                "last_seq": 0,
                "swept_id": 0,
            }
        ],
    )
    # A plain ADD COLUMN (no table rebuild): instant even on a big table.
    op.add_column("store_status", sa.Column("import_job", sa.String(length=32), nullable=True))
    op.create_index(
        "ix_store_status_import_job",
        "store_status",
        ["import_job"],
        unique=False,
        sqlite_where=sa.text("import_job IS NOT NULL"),
        postgresql_where=sa.text("import_job IS NOT NULL"),
    )
    op.execute(VISIBLE_STORE_STATUS)
    op.drop_index("ix_staging_store_status_job", table_name="staging_store_status")
    op.drop_table("staging_store_status")


def downgrade() -> None:
    op.create_table(
        "staging_store_status",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("timestamp_utc", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staging_store_status")),
    )
    op.create_index("ix_staging_store_status_job", "staging_store_status", ["job_id"])
    op.execute("DROP VIEW visible_store_status")
    # Rows hidden by a replace or not published are dropped with what tracked them.
    op.execute(
        "DELETE FROM store_status WHERE import_job IS NOT NULL AND import_job NOT IN"
        " (SELECT b.job_id FROM import_batches b, import_floors f"
        "  WHERE f.table_name = 'store_status' AND b.seq > f.floor_seq)"
    )
    op.execute(
        "DELETE FROM store_status WHERE import_job IS NULL AND id <="
        " (SELECT floor_id FROM import_floors WHERE table_name = 'store_status')"
    )
    op.drop_index("ix_store_status_import_job", table_name="store_status")
    with op.batch_alter_table("store_status", schema=None) as batch_op:
        batch_op.drop_column("import_job")
    op.drop_table("import_floors")
    op.drop_table("import_batches")
