# One image for every Yardmaster process; Compose picks the command.
# Build stage: resolve the locked dependencies into /opt/venv (cached while uv.lock is unchanged),
# then install the packages themselves. Runtime stage: the venv and a non-root user, nothing else.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/api/pyproject.toml services/api/
COPY services/report-worker/pyproject.toml services/report-worker/
COPY services/file-worker/pyproject.toml services/file-worker/
COPY services/simulator/pyproject.toml services/simulator/
RUN uv sync --frozen --no-default-groups --all-packages --no-install-workspace --python /usr/local/bin/python3
COPY shared/ shared/
COPY services/ services/
RUN uv sync --frozen --no-default-groups --all-packages --no-editable --python /usr/local/bin/python3

FROM python:3.11-slim-bookworm AS runtime
RUN useradd --create-home --uid 10001 --user-group yardmaster \
    && mkdir -p /var/lib/yardmaster/files /bucket \
    && chown -R yardmaster:yardmaster /var/lib/yardmaster /bucket
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    YARDMASTER_DATA_DIR=/var/lib/yardmaster \
    YARDMASTER_BUCKET_DIR=/bucket \
    YARDMASTER_API_HOST=0.0.0.0
USER yardmaster
WORKDIR /home/yardmaster
EXPOSE 8000
CMD ["python", "-m", "yardmaster.api", "--port", "8000"]
