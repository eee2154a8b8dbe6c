# syntax=docker/dockerfile:1
# The syncbot container: `syncbot serve` for Cloud Run, `syncbot migrate` for the migration job.
# Only runtime dependencies end up in the final image (no Pulumi, no test tools).

FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/syncbot
# Dependencies first: this layer is reused until the lock file changes.
COPY requirements/runtime.txt requirements/runtime.txt
RUN /opt/syncbot/bin/pip install -r requirements/runtime.txt
COPY pyproject.toml ./
COPY app ./app
RUN /opt/syncbot/bin/pip install --no-deps .

FROM python:3.12-slim
RUN groupadd --system --gid 10001 syncbot \
    && useradd --system --uid 10001 --gid syncbot --create-home --shell /usr/sbin/nologin syncbot \
    && install -d -o 10001 -g 10001 -m 0700 /data
COPY --from=build /opt/syncbot /opt/syncbot
# SYNCBOT_DATA_DIR: the embedded SQLite default (no database variable set) and its files live
# on the /data volume, so they outlive the container.
ENV PATH=/opt/syncbot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SYNCBOT_DATA_DIR=/data
WORKDIR /home/syncbot
USER 10001:10001
VOLUME ["/data"]
# Cloud Run sets PORT (8080); the app falls back to 3000 elsewhere.
EXPOSE 8080
# Docker and compose probe /health (200 when the database answers and the schema is at head);
# the image has no curl, its Python does the request. Cloud Run ignores this (it has its own).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/health', timeout=4)"]
CMD ["syncbot", "serve", "--host", "0.0.0.0"]
