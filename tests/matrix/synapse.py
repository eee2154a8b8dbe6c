"""A throwaway Synapse on loopback with our appservice registered, restartable mid-test."""

from __future__ import annotations

import secrets
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from signedjson.key import generate_signing_key, write_signing_keys

from app.demo.matrix import (
    free_port,
    homeserver_yaml,
    register_user,
    spawn_homeserver,
    stop_process,
)
from tests.wait import wait_for

SERVER = "test.local"


@dataclass
class Synapse:
    work: Path
    hs_port: int = field(default_factory=free_port)
    as_port: int = field(default_factory=free_port)
    as_token: str = field(default_factory=lambda: secrets.token_hex(16))
    hs_token: str = field(default_factory=lambda: secrets.token_hex(16))
    shared_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.hs_port}"

    def write_config(self, registration: str) -> None:
        work = self.work
        (work / "registration.yaml").write_text(registration)
        with open(work / f"{SERVER}.signing.key", "w") as f:
            write_signing_keys(f, [generate_signing_key("a_test")])
        (work / "homeserver.yaml").write_text(
            homeserver_yaml(
                work,
                server_name=SERVER,
                port=self.hs_port,
                shared_secret=self.shared_secret,
                signing_key=work / f"{SERVER}.signing.key",
            )
        )

    def start(self) -> None:
        self.proc = spawn_homeserver(self.work, self.work / "stdout.log")
        proc = self.proc

        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"synapse exited {proc.returncode}:\n{self._log_tail()}")
            try:
                urllib.request.urlopen(self.url + "/_matrix/client/versions", timeout=1).read()
            except OSError:
                return False
            return True

        try:
            wait_for(answers, timeout=60, context=self._log_tail)
        except AssertionError:
            proc.kill()
            raise

    def _log_tail(self) -> str:
        return (self.work / "stdout.log").read_text()[-3000:]

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, grace=15)
        self.proc = None

    def register_user(self, username: str, password: str = "pw-0123456789") -> MatrixUser:
        user_id, token = register_user(self.url, self.shared_secret, username, password)
        return MatrixUser(self.url, user_id, token)


class MatrixUser:
    """A real Matrix user driving the client-server API (what Element would do)."""

    def __init__(self, url: str, user_id: str, token: str) -> None:
        self.user_id = user_id
        self.http = httpx.Client(
            base_url=url, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )
        self._txn = 0

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        resp = self.http.request(method, "/_matrix/client/v3" + path, **kwargs)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def send(self, room: str, content: dict[str, Any], etype: str = "m.room.message") -> str:
        self._txn += 1
        path = f"/rooms/{room}/send/{etype}/t{self._txn}-{secrets.token_hex(4)}"
        return self.call("PUT", path, json=content)["event_id"]

    def text(self, room: str, body: str, html: str | None = None, **extra: Any) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": body, **extra}
        if html is not None:
            content |= {"format": "org.matrix.custom.html", "formatted_body": html}
        return self.send(room, content)

    def redact(self, room: str, event_id: str) -> str:
        self._txn += 1
        return self.call("PUT", f"/rooms/{room}/redact/{event_id}/r{self._txn}", json={})[
            "event_id"
        ]

    def events(self, room: str) -> list[dict[str, Any]]:
        """The room's timeline, oldest first (redacted events keep their ids)."""
        chunk = self.call("GET", f"/rooms/{room}/messages", params={"dir": "b", "limit": 200})
        return list(reversed(chunk["chunk"]))

    def upload(self, data: bytes, mime: str, name: str) -> str:
        resp = self.http.post(
            "/_matrix/media/v3/upload",
            params={"filename": name},
            content=data,
            headers={"Content-Type": mime},
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["content_uri"]

    def close(self) -> None:
        self.http.close()
