"""The Low findings of the hostile-input probe (issue #22): OAuth, pairing, /health, the CLI."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import uvicorn
from sqlalchemy import func, select

import app.store.migrate as migrate
from app.cli import main
from app.core.endpoints import Endpoint, EndpointError
from app.errors import FederationError
from app.federation.service import PAIR_PATH
from app.federation.urls import check_peer_url
from app.store.models import OAuthState, Sync
from app.store.syncs import SyncAdmin, SyncAdminError
from tests.security.hostile import PUBLIC_URL, Hostile, dumps, hostile_app
from tests.slack.harness import free_port
from tests.wait import wait_for


def test_the_oauth_redirect_never_comes_from_the_host_header(hostile: Hostile) -> None:
    answer = hostile.client.get(
        "/slack/install", headers={"Host": "evil.example"}, follow_redirects=False
    )
    assert answer.status_code == 302
    assert (
        "redirect_uri=https://syncbot.example/slack/oauth_redirect" in (answer.headers["location"])
    )
    assert "evil.example" not in answer.headers["location"]
    cookie = answer.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie


@pytest.mark.parametrize(
    "local,host,expected",
    [(False, "syncbot.example", 404), (True, "evil.example", 404), (True, "localhost", 302)],
)
def test_without_a_public_url_only_a_local_loopback_run_installs(
    tmp_path: Path, local: bool, host: str, expected: int
) -> None:
    with hostile_app(tmp_path, lifespan=False, public_url=None, local_development=local) as h:
        answer = h.client.get(
            f"http://{host}/slack/install", headers={"Host": host}, follow_redirects=False
        )
        assert answer.status_code == expected
        if expected == 302:
            assert "redirect_uri=http://localhost/slack/" in answer.headers["location"]


def test_anonymous_installs_are_rate_limited(hostile: Hostile) -> None:
    answers = [
        hostile.client.get("/slack/install", follow_redirects=False).status_code for _ in range(40)
    ]
    assert answers[:30] == [302] * 30
    assert set(answers[30:]) == {429}
    with hostile.runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(OAuthState)) == 30


def test_the_pair_route_checks_the_code_before_resolving_anything(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[Any] = []
    real = socket.getaddrinfo

    def spy(host: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    body = dumps(
        {
            "code": "not-a-code",
            "instance": "peer-z",
            "url": "https://attacker-chosen.example",
            "public_key": "k",
            "anchor": "slack:T1/C1",
        }
    )
    answer = hostile.client.post(PAIR_PATH, content=body)
    assert answer.status_code == 403
    assert "attacker-chosen.example" not in looked_up


def test_health_parses_the_migration_scripts_once(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert hostile.client.get("/health").status_code == 200

    def no_parsing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the Alembic scripts were parsed again")

    monkeypatch.setattr(migrate.ScriptDirectory, "from_config", no_parsing)
    for _ in range(3):
        assert hostile.client.get("/health").status_code == 200


@pytest.mark.parametrize("name", ["a\nb", "x\x1b[2J", "n" * 81, "   ", "tab\there"])
def test_sync_names_that_could_spoof_output_are_refused(hostile: Hostile, name: str) -> None:
    with pytest.raises(SyncAdminError, match="printable"):
        SyncAdmin(hostile.runtime.sessions).create(name)
    with hostile.runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Sync)) == 1  # only "fed"


@pytest.mark.parametrize(
    "text",
    ["matrix:!room\x1b[31m:hs.example", "matrix:!" + "r" * 300 + ":hs", "slack:T1/C1\n"],
)
def test_endpoints_with_escapes_or_over_the_column_are_refused(text: str) -> None:
    if text.endswith("\n"):
        text = "slack:T1/C\u00851"  # a NEL inside the id
    with pytest.raises(EndpointError):
        Endpoint.parse(text)


def test_a_port_out_of_range_is_a_clear_error(hostile: Hostile) -> None:
    with pytest.raises(FederationError, match="not a URL"):
        check_peer_url("https://peer.example:99999")
    invite = {
        "url": "https://peer.example:99999",
        "instance": "peer-b",
        "code": "c",
        "fp": "0",
        "anchor": "slack:T1/C1",
    }
    token = base64.urlsafe_b64encode(json.dumps(invite).encode()).decode()
    with pytest.raises(FederationError, match="not a URL"):
        asyncio.run(hostile.federation.join(token, "fed"))


def test_cli_sync_create_refuses_a_name_with_a_line_break(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOCAL_DEVELOPMENT", "true")
    monkeypatch.setenv("SYNCBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("DATABASE_BACKEND", "sqlite")
    assert main(["migrate"]) == 0
    assert main(["sync", "create", "general\nfake-sync  slack:T1/C1"]) != 0
    err = capsys.readouterr().err
    assert "printable" in err and "Traceback" not in err
    assert PUBLIC_URL  # the hostile settings stay production-shaped elsewhere


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "block_actions", "user": {"id": "U1"}, "actions": []},
        {"type": "event_callback", "event": {"type": "message", "channel": ["C1"]}},
        {"type": ["event_callback"]},
    ],
)
def test_a_malformed_socket_mode_payload_is_acknowledged_not_redelivered(
    hostile: Hostile, payload: dict[str, Any]
) -> None:
    # Socket Mode acks anything below 500; a 5xx would have Slack redeliver it forever.
    events = hostile.services.slack.events
    answer = asyncio.run(events.handle_verified(payload, started=float("-inf")))
    assert answer.status_code == 400


def test_serve_bounds_what_one_client_may_hold() -> None:
    import uvicorn

    from app.cli.serve import SERVER_LIMITS

    config = uvicorn.Config(lambda *a: None, **SERVER_LIMITS)
    assert config.timeout_keep_alive <= 5
    assert config.limit_concurrency and config.limit_concurrency <= 1024
    assert config.h11_max_incomplete_event_size <= 64 * 1024


def _serve(app: Any, header_timeout: float) -> tuple[Any, int, threading.Thread]:
    from app.cli.serve import SERVER_LIMITS
    from app.http_guard import GuardedH11Protocol

    class Quick(GuardedH11Protocol):
        pass

    Quick.header_timeout = header_timeout
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, **(SERVER_LIMITS | {"http": Quick})
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=30, interval=0.02)
    return server, port, thread


def _closed_by_server(sock: socket.socket, deadline: float) -> bool:
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def test_serve_closes_connections_that_never_finish_their_headers() -> None:
    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    server, port, thread = _serve(ok, header_timeout=0.3)
    try:
        silent = socket.create_connection(("127.0.0.1", port))
        partial = socket.create_connection(("127.0.0.1", port))
        partial.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        deadline = time.monotonic() + 30
        assert _closed_by_server(silent, deadline)
        assert _closed_by_server(partial, deadline)
        # A complete request is answered as usual.
        with socket.create_connection(("127.0.0.1", port)) as good:
            good.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            good.settimeout(10)
            assert good.recv(1024).startswith(b"HTTP/1.1 200")
        silent.close()
        partial.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_serve_refuses_a_port_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "99999"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "1-65535" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "payload",
    [
        # Found by the fuzz: Bolt reads view.type of every view payload (KeyError -> 500).
        {"type": "view_submission", "team": {"id": "T0LOCAL"}, "view": {"callback_id": "x"}},
        {"type": "view_closed", "team": {"id": "T0LOCAL"}},
    ],
)
def test_a_signed_view_payload_without_its_view_type_is_400(
    hostile: Hostile, payload: dict[str, Any]
) -> None:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = hostile.slack_headers(body)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    answer = hostile.client.post("/slack/events", content=body, headers=headers)
    assert answer.status_code == 400
