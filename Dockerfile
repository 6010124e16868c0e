# syntax=docker/dockerfile:1
# One image for every role of the service (api, worker, migrate, simulator):
#   docker build -t durable-agent .
# Only the runtime dependencies: no dev, bench or embedded group (`agent up`'s PostgreSQL,
# Redis and Temporal wheels; the image talks to real services), so it also builds on arm64.

FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_DEFAULT_GROUPS=1
WORKDIR /app
# Dependencies first, from the lock file alone, so code changes keep this layer cached;
# the cache mount keeps downloaded wheels across builds without putting them in the image.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --locked --no-install-project --no-editable
COPY pyproject.toml uv.lock README.md ./
COPY agent ./agent
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-editable

FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 agent \
 && useradd --system --uid 10001 --gid agent --home-dir /app --shell /usr/sbin/nologin agent
WORKDIR /app
# Only the virtual environment: the project is installed into it (--no-editable).
COPY --from=build --chown=agent:agent /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    AGENT_API_HOST=0.0.0.0 \
    AGENT_LOG_JSON=true
USER agent
EXPOSE 8000
# No HEALTHCHECK: the roles differ (the worker serves no HTTP); compose and Kubernetes
# probe each role (the API's /readyz and /healthz).
CMD ["agent", "api"]
