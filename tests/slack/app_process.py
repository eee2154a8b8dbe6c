"""The app as a separate process for crash tests: ``python -m tests.slack.app_process``.

Configured by environment: SB_DB_URL, SB_SLACK_URL, SB_SIGNING_SECRET, SB_PORT, SB_LEASE.
Runs until killed (the tests kill it with SIGKILL mid-delivery).
"""

from __future__ import annotations

import os
import signal
import threading

from sqlalchemy.engine import make_url

from app.store.engine import make_engine
from tests.conftest import local_settings
from tests.slack.harness import AppServer


def main() -> None:
    settings = local_settings(
        slack_signing_secret=os.environ["SB_SIGNING_SECRET"],
        slack_api_url=os.environ["SB_SLACK_URL"],
    )
    engine = make_engine(settings, url=make_url(os.environ["SB_DB_URL"]))
    AppServer(
        settings,
        engine,
        port=int(os.environ["SB_PORT"]),
        lease_seconds=float(os.environ.get("SB_LEASE", "3")),
        slack_timeout=1.0,
    ).start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
