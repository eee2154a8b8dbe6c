"""AWS Lambda entry: the same ASGI app behind Mangum, plus the scheduler's direct tasks.

Cold start: when ``SYNCBOT_SECRET_ARNS`` (JSON: env name -> Secrets Manager ARN) is set, each
secret is fetched with boto3 and put in the environment *before* settings are parsed, so the app
reads secrets exactly as in every other runtime shape. boto3 ships with the Lambda Python runtime
but not in our bundle, hence imported lazily; this module imports with the runtime dependencies
alone.

Direct invocations (not HTTP): ``{"syncbot_task": "migrate"}`` upgrades the schema under the
migration lock; ``{"syncbot_task": "tick"}`` runs the runtime's maintenance tasks. Batches from
the delivery queue's event source mapping (``Records`` from ``aws:sqs``) are delivery notices
(:mod:`app.queues.sqs`), answered with a partial batch failure report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, MutableMapping
from typing import Any

from app.assembly import build_runtime
from app.errors import ConfigError
from app.logs import configure_logging
from app.runtime import Runtime
from app.settings import load_settings
from app.store.engine import ensure_database, wait_for_database
from app.store.migrate import current_revision, upgrade

log = logging.getLogger("syncbot.lambda")

# Names shared with infra/contract.py (AWS_SECRET_ARNS_ENV, LAMBDA_TASK_KEY, TASK_*); the app
# bundle does not ship infra/, so they are restated here and a test keeps them equal.
SECRET_ARNS_ENV = "SYNCBOT_SECRET_ARNS"
TASK_KEY = "syncbot_task"
TASK_MIGRATE = "migrate"
TASK_TICK = "tick"

_state: dict[str, Any] = {}


# The same separator as infra.contract.AWS_SECRET_JSON_KEY_SEPARATOR (the bundle ships no infra/).
JSON_FIELD_SEPARATOR = "#"


def resolve_secret_arns(
    environ: MutableMapping[str, str], client_factory: Callable[[], Any] | None = None
) -> list[str]:
    """Fetch each secret named in ``SYNCBOT_SECRET_ARNS`` into ``environ``.

    A variable already set in the environment wins (an operator override).

    Args:
        environ: the environment to fill (``os.environ`` in production).
        client_factory: returns a Secrets Manager client; boto3's by default.

    Returns:
        The names of the variables set.

    Raises:
        ConfigError: the mapping is malformed or a secret could not be read, naming each.
    """
    raw = environ.get(SECRET_ARNS_ENV, "").strip()
    if not raw:
        return []
    try:
        mapping = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{SECRET_ARNS_ENV}: not valid JSON ({exc.msg})"]) from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise ConfigError([f"{SECRET_ARNS_ENV}: expected a JSON object of env name -> ARN"])
    if client_factory is None:

        def client_factory() -> Any:
            import boto3  # ships with the Lambda runtime, not with our bundle

            return boto3.client("secretsmanager")

    client = client_factory()
    problems: list[str] = []
    loaded: list[str] = []
    for name, ref in sorted(mapping.items()):
        if environ.get(name):
            continue
        # "<arn>#<field>" names one field of a JSON secret (RDS keeps its managed master
        # password as {"username": ..., "password": ...}).
        arn, _, field = ref.partition(JSON_FIELD_SEPARATOR)
        try:
            value = client.get_secret_value(SecretId=arn)["SecretString"]
        except Exception as exc:
            # The ARN is not secret; the error class tells an operator what went wrong.
            problems.append(f"{name}: cannot read secret {arn} ({type(exc).__name__})")
            continue
        if field:
            try:
                value = str(json.loads(value)[field])
            except (ValueError, KeyError, TypeError):
                problems.append(f"{name}: secret {arn} has no JSON field {field!r}")
                continue
        environ[name] = value
        loaded.append(name)
    if problems:
        raise ConfigError(problems)
    return loaded


def _runtime() -> Runtime:
    """The runtime of this execution environment, built once at cold start."""
    if "runtime" not in _state:
        resolve_secret_arns(os.environ)
        settings = load_settings()
        configure_logging(
            settings.log_level,
            secrets=settings.secret_values(),
            fmt=settings.log_format or "json",
        )
        settings.require_production_ready()
        _state["runtime"] = build_runtime(settings)
    runtime: Runtime = _state["runtime"]
    return runtime


def _asgi_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    if "asgi" not in _state:
        from mangum import Mangum

        from app.web import create_app

        # Lifespan off: a frozen Lambda cannot run background workers; the scheduler's tick
        # does their periodic part.
        app = create_app(_runtime(), lifespan=False)
        _state["asgi"] = Mangum(app, lifespan="off")
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] = _state["asgi"]
    return handler


def run_task(runtime: Runtime, task: str) -> dict[str, Any]:
    """Run one direct-invocation task and describe the outcome."""
    if task == TASK_MIGRATE:
        # The deploy's first invocation may meet a paused database or one not yet created.
        ensure_database(runtime.settings, runtime.engine.url)
        wait_for_database(runtime.engine)
        upgrade(runtime.engine)
        return {"task": task, "ok": True, "revision": current_revision(runtime.engine)}
    if task == TASK_TICK:
        results = runtime.run_maintenance()
        ok = all(value is not None for value in results.values())
        return {"task": task, "ok": ok, "results": results}
    return {"task": task, "ok": False, "error": f"unknown task {task!r}"}


def _loop() -> asyncio.AbstractEventLoop:
    """The execution environment's one event loop, the one Mangum runs requests on too: the
    app's HTTP clients and locks are bound to it and must outlive a single invocation."""
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    return loop


def is_sqs_batch(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        return False
    return all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)


def run_sqs_batch(runtime: Runtime, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Deliver the notices of one SQS batch; failed ones come back when they are due."""
    from app.queues.sqs import handle_batch

    services = runtime.services
    if not runtime.settings.delivery_queue:
        raise ConfigError(["SQS notices arrived but SYNCBOT_DELIVERY_QUEUE is not set"])
    return _loop().run_until_complete(
        handle_batch(records, services.dispatcher, queue_url=runtime.settings.delivery_queue)
    )


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda function handler."""
    if isinstance(event, dict) and TASK_KEY in event:
        result = run_task(_runtime(), str(event[TASK_KEY]))
        log.info("task finished", extra=result)
        return result
    if is_sqs_batch(event):
        report = run_sqs_batch(_runtime(), event["Records"])
        log.info(
            "delivery notices handled",
            extra={"records": len(event["Records"]), "failed": len(report["batchItemFailures"])},
        )
        return report
    _loop()  # Mangum asks asyncio for the current loop; make sure there is an open one
    return _asgi_handler()(event, context)


def reset() -> None:
    """Forget the cold-start state (tests; a new configuration in the same process)."""
    runtime = _state.pop("runtime", None)
    if runtime is not None:
        runtime.close()
    _state.clear()
