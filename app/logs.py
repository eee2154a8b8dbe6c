"""Structured JSON logs: one object per line, a request id per request, secrets scrubbed.

Every record passes through :class:`JsonFormatter`, which removes the configured secret values
(``Settings.secret_values()``) and anything shaped like a token (Slack ``xox?-``/``xapp-``
tokens, ``Bearer`` credentials, Matrix ``syt_``/``mat_`` access tokens) from the message and from
every extra field. Message bodies are only logged at DEBUG: fields named in :data:`BODY_FIELDS`
are dropped from records above DEBUG, whatever the caller passed.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

REDACTED = "[REDACTED]"

# Tokens that must never reach a log even when they are not in our own configuration
# (a token from a Slack response, a peer's header).
TOKEN_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\bxox[abpeors]-[A-Za-z0-9-]+"),
    re.compile(r"\bxapp-[A-Za-z0-9-]+"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\b(?:syt|mat|syr)_[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)(access_token=)[^&\s\"']+"),
)

# Fields that carry user content; kept only on DEBUG records.
BODY_FIELDS = frozenset({"body", "text", "message_text", "blocks", "content", "payload"})

# Extras that only repeat the message for a colour terminal: uvicorn passes ``color_message``
# (the message with ANSI escapes) on its own records.
DROPPED_FIELDS = frozenset({"color_message"})

LOG_FORMATS = ("json", "text")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "syncbot_request_id", default=None
)


def current_request_id() -> str | None:
    """The id of the request being handled in this context, if any."""
    return _request_id.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def request_context(request_id: str | None = None) -> Iterator[str]:
    """Bind a request id to every record logged inside the block (and its tasks)."""
    rid = request_id or new_request_id()
    token = _request_id.set(rid)
    try:
        yield rid
    finally:
        _request_id.reset(token)


class Scrubber:
    """Replaces known secret values and token-shaped strings with :data:`REDACTED`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is removed whole.
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        for pattern in TOKEN_PATTERNS:
            value = pattern.sub(_redact_match, value)
        return value

    def value(self, value: Any) -> Any:
        """Scrub strings inside any JSON-like value."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {str(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.text(str(value))


def _redact_match(match: re.Match[str]) -> str:
    # Keep a captured prefix such as "access_token=" so the log still says what was there.
    return (match.group(1) if match.groups() else "") + REDACTED


def _extras(record: logging.LogRecord, taken: Iterable[str]) -> dict[str, Any]:
    """The ``extra=`` fields of ``record`` that may be logged at its level."""
    skip = set(taken)
    fields: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in _STANDARD or key in skip or key in DROPPED_FIELDS or key.startswith("_"):
            continue
        if key in BODY_FIELDS and record.levelno > logging.DEBUG:
            continue
        fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record, scrubbed."""

    def __init__(self, scrubber: Scrubber | None = None) -> None:
        super().__init__()
        self.scrubber = scrubber or Scrubber()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or current_request_id()
        if rid:
            entry["request_id"] = rid
        entry.update(_extras(record, entry))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(self.scrubber.value(entry), ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """One readable line per record for a person at a terminal (``LOG_FORMAT=text``), scrubbed
    the same way: ``HH:MM:SS LEVEL logger: message key=value ...``."""

    def __init__(self, scrubber: Scrubber | None = None) -> None:
        super().__init__()
        self.scrubber = scrubber or Scrubber()

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        line = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}"
        extras = _extras(record, ("request_id",))
        rid = getattr(record, "request_id", None) or current_request_id()
        if rid:
            extras = {"request_id": rid, **extras}
        if extras:
            line += " " + " ".join(f"{k}={_plain(v)}" for k, v in extras.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self.scrubber.text(line)


def _plain(value: Any) -> str:
    if isinstance(value, str) and value and " " not in value:
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def configure_logging(
    level: str = "INFO",
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    fmt: str = "json",
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr), scrubbed, at ``level``.

    Idempotent: a second call replaces the handler installed by the first, so the CLI, the
    Lambda entry and tests can all call it.

    Args:
        level: a ``LOG_LEVEL`` name.
        secrets: values to remove from every record (``Settings.secret_values()``).
        stream: where to write; stderr when omitted.
        fmt: ``json`` (one object per line, for log pipelines) or ``text`` (for a terminal).

    Returns:
        The installed handler.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_syncbot", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    scrubber = Scrubber(secrets)
    handler.setFormatter(TextFormatter(scrubber) if fmt == "text" else JsonFormatter(scrubber))
    handler._syncbot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn installs its own handlers on its loggers; route them through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
        # uvicorn.Config(log_level=…) pins a level on these loggers for the whole process;
        # LOG_LEVEL decides, so they inherit the root's.
        lg.setLevel(logging.NOTSET)
    # Alembic announces its context on every schema check, i.e. on every /health probe;
    # our own "schema migrated" line says what matters.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    return handler


# --- the process's error count (a health indicator) ---------------------------------------


class ErrorCounter(logging.Handler):
    """Counts ERROR (and worse) records of the ``syncbot`` loggers since the process started."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self._count = 0
        self._count_lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._count

    def emit(self, record: logging.LogRecord) -> None:
        with self._count_lock:
            self._count += 1


_counter_lock = threading.Lock()


def install_error_counter(logger: str = "syncbot") -> ErrorCounter:
    """The process's error counter on ``logger``, installed on first use (idempotent)."""
    target = logging.getLogger(logger)
    with _counter_lock:
        for handler in target.handlers:
            if isinstance(handler, ErrorCounter):
                return handler
        counter = ErrorCounter()
        target.addHandler(counter)
        return counter
