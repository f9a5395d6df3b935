# One slim image, three roles (DESIGN.md §10.7), chosen by the command:
#   serve    the API on ATTUNE_PORT (default; run as many replicas as needed)
#   worker   webhook delivery, the alert sweep and retention; /healthz and /metrics on
#            ATTUNE_WORKER_PORT
#   migrate  apply the migrations and exit (under an advisory lock: safe from every replica)
# compose.yaml runs all three against PostgreSQL; see the README's Docker section.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    ATTUNE_HOST=0.0.0.0 \
    ATTUNE_PORT=8000 \
    ATTUNE_WORKER_PORT=8001 \
    ATTUNE_ENVIRONMENT=production

RUN pip install --no-cache-dir uv && useradd --create-home --uid 10001 attune
WORKDIR /app

COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra parquet --no-install-project
COPY alembic.ini ./
COPY alembic ./alembic
COPY api ./api
COPY models ./models
COPY services ./services
RUN uv sync --frozen --no-dev --extra parquet && mkdir -p /app/var && chown -R attune /app/var

USER attune
EXPOSE 8000 8001
# Healthy when the API or the worker's server answers /healthz (standard library only, quick).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/app/.venv/bin/python", "-m", "api.healthcheck"]
ENTRYPOINT ["/app/.venv/bin/attune"]
CMD ["serve"]
