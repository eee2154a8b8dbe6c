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
    && useradd --system --uid 10001 --gid syncbot --create-home --shell /usr/sbin/nologin syncbot
COPY --from=build /opt/syncbot /opt/syncbot
ENV PATH=/opt/syncbot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /home/syncbot
USER 10001:10001
# Cloud Run sets PORT (8080); the app falls back to 3000 elsewhere.
EXPOSE 8080
CMD ["syncbot", "serve", "--host", "0.0.0.0"]
