# Slim image: install from the lockfile, run as a non-root user, migrate, then serve.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    ATTUNE_HOST=0.0.0.0 \
    ATTUNE_PORT=8000 \
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
EXPOSE 8000
# Production does not get the demo organization that `make run` seeds: migrate, then serve.
CMD ["sh", "-c", ".venv/bin/attune migrate && exec .venv/bin/attune serve"]
