"""The demo's Matrix side: a throwaway Synapse on loopback with syncbot's appservice registered,
and one person (Alice) in a room the bridge bot joined.

Used only when a homeserver is at hand: the ``matrix-synapse`` package is importable (the dev
venv of ``make test`` has it). Alice drives the client-server API as any Matrix client would.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

SERVER_NAME = "localhost"
# Room version 12 ids carry no server part, which endpoints do not parse yet.
ROOM_VERSION = "11"
START_TIMEOUT = 90.0
_UNLIMITED = "{per_second: 10000, burst_count: 100000}"


def homeserver_at_hand() -> bool:
    """Whether a Synapse can be started here (the dev dependencies are installed)."""
    return importlib.util.find_spec("synapse") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def homeserver_yaml(
    work: Path, *, server_name: str, port: int, shared_secret: str, signing_key: Path
) -> str:
    """A loopback-only Synapse config: SQLite in ``work``, no federation, no rate limits,
    cheap password hashing.

    Registration is by the shared-secret admin API only, and the appservice of
    ``work/registration.yaml`` is loaded.
    """
    return f"""\
server_name: "{server_name}"
public_baseurl: "http://127.0.0.1:{port}/"
pid_file: "{work}/homeserver.pid"
report_stats: false
listeners:
  - {{port: {port}, bind_addresses: ["127.0.0.1"], type: http, tls: false,
     resources: [{{names: [client], compress: false}}]}}
database: {{name: sqlite3, args: {{database: "{work}/homeserver.db"}}}}
media_store_path: "{work}/media"
signing_key_path: "{signing_key}"
registration_shared_secret: "{shared_secret}"
macaroon_secret_key: "{secrets.token_hex(16)}"
form_secret: "{secrets.token_hex(16)}"
enable_registration: false
# Throwaway users with throwaway passwords: bcrypt's cheapest cost (Synapse's default, 12,
# spends a quarter of a CPU second per registration).
bcrypt_rounds: 4
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
app_service_config_files: ["{work}/registration.yaml"]
rc_message: {_UNLIMITED}
rc_registration: {_UNLIMITED}
rc_login: {{address: {_UNLIMITED}, account: {_UNLIMITED}, failed_attempts: {_UNLIMITED}}}
rc_joins: {{local: {_UNLIMITED}, remote: {_UNLIMITED}}}
rc_invites: {{per_room: {_UNLIMITED}, per_user: {_UNLIMITED}}}
"""


def register_user(url: str, shared_secret: str, username: str, password: str) -> tuple[str, str]:
    """A (non-admin) user made with Synapse's shared-secret admin API, as
    ``register_new_matrix_user`` does; its user id and access token."""
    with httpx.Client(base_url=url, timeout=10) as http:
        nonce = http.get("/_synapse/admin/v1/register").json()["nonce"]
        message = b"\x00".join([nonce.encode(), username.encode(), password.encode(), b"notadmin"])
        mac = hmac.new(shared_secret.encode(), message, hashlib.sha1).hexdigest()
        response = http.post(
            "/_synapse/admin/v1/register",
            json={
                "nonce": nonce,
                "username": username,
                "password": password,
                "admin": False,
                "mac": mac,
            },
        )
        response.raise_for_status()
        data = response.json()
    return str(data["user_id"]), str(data["access_token"])


def spawn_homeserver(work: Path, log: Path) -> subprocess.Popen[bytes]:
    """Synapse run from ``work/homeserver.yaml`` (see :func:`homeserver_yaml`), its output
    appended to ``log``."""
    with log.open("ab") as out:  # the child holds its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(work / "homeserver.yaml")],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_process(proc: subprocess.Popen[bytes], *, grace: float) -> None:
    """Ask ``proc`` to end, and kill it if it has not within ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Homeserver:
    """Synapse in a subprocess, configured in ``work``, with our registration loaded."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.as_token = secrets.token_urlsafe(32)
        self.hs_token = secrets.token_urlsafe(32)
        self._shared_secret = secrets.token_hex(16)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """The MATRIX_* settings of a syncbot bridging to this homeserver."""
        return {
            "MATRIX_HOMESERVER_URL": self.url,
            "MATRIX_SERVER_NAME": SERVER_NAME,
            "MATRIX_AS_TOKEN": self.as_token,
            "MATRIX_HS_TOKEN": self.hs_token,
            "MATRIX_PERMISSIONS": f'{{"{SERVER_NAME}": "admin"}}',
        }

    def start(self, registration: str) -> Homeserver:
        work = self.work
        work.mkdir(parents=True, exist_ok=True)
        (work / "registration.yaml").write_text(registration)
        (work / "homeserver.yaml").write_text(
            homeserver_yaml(
                work,
                server_name=SERVER_NAME,
                port=self.port,
                shared_secret=self._shared_secret,
                signing_key=work / "signing.key",
            )
        )
        # Synapse makes its missing signing key itself before it runs.
        self._proc = spawn_homeserver(work, work / "synapse.log")
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (work / "synapse.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the homeserver did not start:\n{tail}")
            time.sleep(0.1)

    def register(self, username: str) -> MatrixPerson:
        """A user made with the shared-secret admin API (what `register_new_matrix_user` does)."""
        password = secrets.token_urlsafe(16)
        user_id, token = register_user(self.url, self._shared_secret, username, password)
        return MatrixPerson(self.url, user_id, token)

    def stop(self) -> None:
        if self._proc is None:
            return
        stop_process(self._proc, grace=20)
        self._proc = None


class MatrixPerson:
    """A Matrix user on the client-server API."""

    def __init__(self, url: str, user_id: str, token: str) -> None:
        self.user_id = user_id
        self._http = httpx.Client(
            base_url=f"{url}/_matrix/client/v3",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        self._txn = 0

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return dict(response.json())

    def create_room(self, name: str) -> str:
        spec = {"preset": "private_chat", "name": name, "room_version": ROOM_VERSION}
        return str(self.call("POST", "/createRoom", json=spec)["room_id"])

    def invite(self, room: str, user_id: str) -> None:
        self.call("POST", f"/rooms/{room}/invite", json={"user_id": user_id})

    def members(self, room: str) -> set[str]:
        return set(self.call("GET", f"/rooms/{room}/joined_members")["joined"])

    def say(self, room: str, body: str) -> str:
        self._txn += 1
        path = f"/rooms/{room}/send/m.room.message/demo{self._txn}-{secrets.token_hex(4)}"
        content = {"msgtype": "m.text", "body": body}
        return str(self.call("PUT", path, json=content)["event_id"])

    def display_name(self, user_id: str) -> str:
        """The user's display name (a ghost's is "Name (Workspace)"), else the id."""
        try:
            name = self.call("GET", f"/profile/{user_id}/displayname").get("displayname")
        except httpx.HTTPError:
            return user_id
        return str(name or user_id)

    def events(self, room: str) -> list[dict[str, Any]]:
        """The room's timeline, oldest first (a redacted event keeps its id, loses content)."""
        chunk = self.call("GET", f"/rooms/{room}/messages", params={"dir": "b", "limit": 100})
        return list(reversed(chunk["chunk"]))

    def close(self) -> None:
        self._http.close()
