"""The bridge app (Slack + Matrix) as a separate process for crash tests:
``python -m tests.matrix.app_process``.

Configured by environment: SB_DB_URL, SB_SLACK_URL, SB_SIGNING_SECRET, SB_PORT (the appservice
port Synapse pushes to), SB_HS_URL, SB_AS_TOKEN, SB_HS_TOKEN, SB_LEASE. Its outbox runs a short
retry policy, so a homeserver outage of seconds spans what minutes would in production (many
times the retry budget). Runs until killed.
"""

from __future__ import annotations

import os
import signal
import threading

from sqlalchemy.engine import make_url

from app.core.outbox import RetryPolicy
from app.store.engine import make_engine
from tests.conftest import local_settings
from tests.matrix.harness import BridgeApp
from tests.matrix.synapse import SERVER

# Five failures in a row hold a target; a held target is rechecked every 0.3 s.
FAULT_POLICY = RetryPolicy(max_attempts=5, base_delay=0.05, max_delay=0.3, jitter=0.2)


def main() -> None:
    port = int(os.environ["SB_PORT"])
    settings = local_settings(
        slack_signing_secret=os.environ["SB_SIGNING_SECRET"],
        slack_api_url=os.environ["SB_SLACK_URL"],
        matrix_homeserver_url=os.environ["SB_HS_URL"],
        matrix_server_name=SERVER,
        matrix_as_token=os.environ["SB_AS_TOKEN"],
        matrix_hs_token=os.environ["SB_HS_TOKEN"],
        matrix_permissions={"*": "relay", SERVER: "admin"},
        public_url=f"http://127.0.0.1:{port}",
        # The homeserver is restarted with events queued for us: read them back soon.
        matrix_catchup_interval=1.0,
    )
    engine = make_engine(settings, url=make_url(os.environ["SB_DB_URL"]))
    app = BridgeApp(settings, engine, port=port)
    app.retry = FAULT_POLICY
    app.lease_seconds = float(os.environ.get("SB_LEASE", "2"))
    app.slack_timeout = 1.0
    app.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
