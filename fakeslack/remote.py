"""Drive a fake Slack running in another process (``python -m fakeslack``) over its control API.

Stdlib only, so a benchmark or the demo can use it from any process::

    with RemoteSlack.spawn("--workspaces", "3", "--latency-ms", "50") as slack:
        WebClient(token=slack.bot_token("T000"), base_url=slack.api_url)
        slack.fail("chat.postMessage", "429:2", "500")
        slack.post_message("T000", "C000", "U000", "hello")
        slack.messages("T001", "C001")
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from typing import Any


class RemoteError(RuntimeError):
    """The fake refused a control request or did not start."""


class RemoteSlack:
    """A handle on a fake Slack in another process, built from its startup JSON line."""

    def __init__(self, info: dict[str, Any], process: subprocess.Popen[str] | None = None) -> None:
        self.info = info
        self.process = process

    @classmethod
    def spawn(cls, *args: str, python: str = sys.executable, timeout: float = 30.0) -> RemoteSlack:
        """Start ``python -m fakeslack *args`` and wait for its startup line."""
        proc = subprocess.Popen(
            [python, "-m", "fakeslack", *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        # readline blocks until the line or EOF; the child prints it once it listens.
        try:
            line = proc.stdout.readline()
            info = json.loads(line)
        except ValueError as exc:
            proc.kill()
            proc.wait(timeout)
            raise RemoteError(f"fakeslack did not start (exit {proc.returncode})") from exc
        return cls(info, proc)

    @classmethod
    def attach(cls, url: str) -> RemoteSlack:
        """Use a fake that is already running at ``url`` (its root URL)."""
        base = url.rstrip("/") + "/_fake/state"
        with urllib.request.urlopen(base, timeout=10) as resp:
            return cls(json.load(resp))

    # --- what the app needs ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def api_url(self) -> str:
        """``slack_sdk``'s ``base_url`` (ends with ``/api/``)."""
        return str(self.info["api_url"])

    @property
    def signing_secret(self) -> str:
        return str(self.info["signing_secret"])

    @property
    def app_token(self) -> str:
        return str(self.info["app_token"])

    @property
    def workspaces(self) -> list[dict[str, Any]]:
        return list(self.info["workspaces"])

    def bot_token(self, team_id: str) -> str:
        for ws in self.info["workspaces"]:
            if ws["team_id"] == team_id:
                return str(ws["bot_token"])
        raise KeyError(team_id)

    # --- control ---------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.info['control_url']}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            raise RemoteError(exc.read().decode(errors="replace")) from exc

    def refresh(self) -> None:
        """Re-read the workspaces (after seeding more)."""
        self.info = self._request("GET", "state")

    def populate(
        self, workspaces: int, *, channels: int = 1, users: int = 1
    ) -> list[dict[str, Any]]:
        body = {"workspaces": workspaces, "channels": channels, "users": users}
        made = self._request("POST", "workspaces", body)["workspaces"]
        self.refresh()
        return list(made)

    def fail(self, method: str, *faults: str, probability: float | None = None) -> None:
        """Queue ``faults`` (``"429:2"``, ``"500"``, ``"timeout"``, ``"drop_after"``…) for
        ``method`` (``"*"``: any); with ``probability``, pick one at random per call."""
        body: dict[str, Any] = {"method": method, "faults": list(faults)}
        if probability is not None:
            body["probability"] = probability
        self._request("POST", "faults", body)

    def clear_faults(self) -> None:
        self._request("DELETE", "faults")

    def latency(self, seconds: float, method: str = "*") -> None:
        self._request("POST", "latency", {"seconds": seconds, "method": method})

    def route_events(self, url: str | None, team_id: str | None = None) -> None:
        """POST events (of ``team_id`` only, or all) to ``url``."""
        self._request("POST", "events_url", {"url": url, "team_id": team_id})

    def post_message(
        self, team_id: str, channel: str, user: str, text: str, thread_ts: str | None = None
    ) -> str:
        body = {"team_id": team_id, "channel": channel, "user": user, "text": text}
        if thread_ts:
            body["thread_ts"] = thread_ts
        return str(self._request("POST", "messages", body)["ts"])

    def messages(self, team_id: str, channel: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"team_id": team_id, "channel": channel})
        return list(self._request("GET", f"messages?{query}")["messages"])

    def calls(self, method: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"since": since, **({"method": method} if method else {})})
        return list(self._request("GET", f"calls?{query}")["calls"])

    def events(self, since: int = 0) -> dict[str, Any]:
        """``{"events": [envelope…], "pending": n}``."""
        return dict(self._request("GET", f"events?since={since}"))

    # --- lifecycle -------------------------------------------------------------------------------

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the process this handle spawned (SIGTERM, then SIGKILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> RemoteSlack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
