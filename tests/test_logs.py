"""JSON logs: one object per line, request ids, secrets scrubbed, bodies only at DEBUG."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app.logs import REDACTED, Scrubber, configure_logging, request_context


@pytest.fixture
def capture() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    yield stream
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_syncbot", False):
            root.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_records_are_json_with_level_and_extras(capture: io.StringIO) -> None:
    configure_logging("INFO", stream=capture)
    log = logging.getLogger("syncbot.test")
    log.debug("hidden")
    log.info("hello %s", "wörld 🎉", extra={"sync_id": 7})
    [entry] = lines(capture)
    assert entry["level"] == "INFO" and entry["logger"] == "syncbot.test"
    assert entry["message"] == "hello wörld 🎉" and entry["sync_id"] == 7
    assert "request_id" not in entry


def test_log_level_is_honoured(capture: io.StringIO) -> None:
    configure_logging("warning", stream=capture)
    logging.getLogger("syncbot.test").info("quiet")
    logging.getLogger("syncbot.test").warning("loud")
    assert [e["message"] for e in lines(capture)] == ["loud"]


def test_request_id_bound_within_context(capture: io.StringIO) -> None:
    configure_logging("INFO", stream=capture)
    log = logging.getLogger("syncbot.test")
    with request_context("req-1"):
        log.info("inside")
    with request_context() as generated:
        log.info("generated")
    log.info("outside")
    entries = lines(capture)
    assert entries[0]["request_id"] == "req-1"
    assert entries[1]["request_id"] == generated and len(generated) == 32
    assert "request_id" not in entries[2]


def test_configured_secrets_and_token_patterns_are_scrubbed(capture: io.StringIO) -> None:
    configure_logging("DEBUG", secrets=["my-signing-secret-value"], stream=capture)
    log = logging.getLogger("syncbot.test")
    log.info(
        "sig my-signing-secret-value bot xoxb-123-456-abc user xoxp-9-8 app xapp-1-A-2",
        extra={
            "headers": {"Authorization": "Bearer abc.def-ghi"},
            "url": "https://hs/_matrix?access_token=syt_c2xh_abcdefghijkl_0",
            "mx": "syt_c2xhY2s_abcdefghijklmnop_1a2b3c",
            "nested": ["xoxe-1-refresh", {"deep": "my-signing-secret-value"}],
        },
    )
    raw = capture.getvalue()
    for leaked in ("my-signing-secret", "xoxb-", "xoxp-", "xapp-", "abc.def", "syt_", "xoxe-"):
        assert leaked not in raw
    [entry] = lines(capture)
    assert entry["headers"] == {"Authorization": REDACTED}
    assert entry["url"] == f"https://hs/_matrix?access_token={REDACTED}"


def test_exceptions_are_scrubbed_too(capture: io.StringIO) -> None:
    configure_logging("INFO", stream=capture)
    try:
        raise ValueError("bad token xoxb-1-2-3")
    except ValueError:
        logging.getLogger("syncbot.test").exception("failed")
    [entry] = lines(capture)
    assert "ValueError" in str(entry["exception"]) and "xoxb-" not in str(entry["exception"])


def test_message_bodies_only_at_debug(capture: io.StringIO) -> None:
    configure_logging("DEBUG", stream=capture)
    log = logging.getLogger("syncbot.test")
    log.info("relayed", extra={"text": "private words", "body": "more", "sync_id": 1})
    log.debug("relayed", extra={"text": "private words"})
    info, debug = lines(capture)
    assert "text" not in info and "body" not in info and info["sync_id"] == 1
    assert debug["text"] == "private words"


def test_reconfiguring_replaces_the_handler(capture: io.StringIO) -> None:
    other = io.StringIO()
    configure_logging("INFO", stream=other)
    configure_logging("INFO", stream=capture)
    logging.getLogger("syncbot.test").info("once")
    assert other.getvalue() == "" and len(lines(capture)) == 1


def test_scrubber_prefers_longest_secret() -> None:
    scrub = Scrubber(["abcdef", "abcdefghij"])
    assert scrub.text("x abcdefghij y") == f"x {REDACTED} y"
    assert scrub.value({"n": 1, "ok": True, "none": None}) == {"n": 1, "ok": True, "none": None}


def test_uvicorn_color_message_stays_out_of_json(capture: io.StringIO) -> None:
    configure_logging("INFO", stream=capture)
    # What uvicorn logs: the plain message plus an ANSI-coloured copy of it.
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]",
        42,
        extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"},
    )
    [entry] = lines(capture)
    assert entry["message"] == "Started server process [42]"
    assert "color_message" not in entry and "\x1b" not in capture.getvalue()


def test_text_format_is_one_scrubbed_line(capture: io.StringIO) -> None:
    configure_logging("INFO", stream=capture, fmt="text", secrets=["hunter2-secret"])
    logging.getLogger("syncbot.test").warning(
        "token xoxb-123-abc leaked", extra={"path": "/x", "why": "hunter2-secret here"}
    )
    [line] = capture.getvalue().splitlines()
    assert " WARNING syncbot.test: token " in line and "path=/x" in line
    assert "xoxb-123" not in line and "hunter2" not in line and REDACTED in line
    assert not line.startswith("{")
