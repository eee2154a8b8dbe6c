"""``syncbot status [--json]`` against a real database, with nothing of the test process's
environment (tests/cli_run.py)."""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from app.cli import deliveries, status
from app.slack.socket_state import ConnectionBoard, ConnectionState
from app.store.engine import make_engine, session_factory
from app.store.migrate import upgrade
from tests.builders import outbox_row
from tests.cli_run import run_cli
from tests.conftest import TEST_KEY, local_settings, syncbot_env
from tests.databases import throwaway_database


def group(module: ModuleType) -> Callable[[Sequence[str]], int]:
    """The command group of ``module`` on its own parser, so the test does not depend on the
    registry."""

    def main(argv: Sequence[str]) -> int:
        parser = argparse.ArgumentParser(prog="syncbot")
        module.register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(argv)
        return int(args.func(args))

    return main


def cli_env(db: Path) -> dict[str, str]:
    """A local syncbot on the SQLite file ``db``."""
    return syncbot_env(
        {
            "LOCAL_DEVELOPMENT": "true",
            "DATABASE_BACKEND": "sqlite",
            "DATABASE_URL": f"sqlite:///{db}",
            "TOKEN_ENCRYPTION_KEY": TEST_KEY,
            "LOG_LEVEL": "WARNING",
        }
    )


def syncbot_status(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(group(status), cli_env(db), "status", *args)


def test_status_table_and_json_show_what_the_service_recorded(tmp_path: Path) -> None:
    with throwaway_database("sqlite", tmp_path) as url:
        engine = make_engine(local_settings(), url=url)
        upgrade(engine)
        sessions = session_factory(engine)
        now = datetime.now(UTC)
        with sessions() as session, session.begin():
            for n in (1, 2, 3, 4):
                session.add(outbox_row("delivered", delay=n, at=now))
            session.add(outbox_row("dead"))
        board = ConnectionBoard(sessions)
        board.set_state("T1", ConnectionState.CONNECTED)
        db = Path(str(url.database))

        table = syncbot_status(db)
        assert table.returncode == 0, table.stderr
        assert "status                   ok" in table.stdout
        assert "dead deliveries          1" in table.stdout
        assert "p50 2.00s" in table.stdout and "p95 4.00s" in table.stdout
        assert any(line.split()[:2] == ["T1", "connected"] for line in table.stdout.splitlines())

        board.set_state("T2", ConnectionState.FAILED, detail="invalid_auth", error=True)
        out = syncbot_status(db, "--json")
        # A failed workspace is something to act on: a non-zero exit for scripts.
        assert out.returncode == 1, out.stderr
        data = json.loads(out.stdout)
        assert data["status"] == "degraded"
        assert data["failed_connections"] == ["T2"]
        assert data["connections"]["T2"]["connection_status"] == "failed"
        assert data["connections"]["T2"]["detail"] == "invalid_auth"
        assert data["message_latency"]["samples"] == 4
        assert data["dead_deliveries"] == 1 and data["outbox_depth"] == 0
        assert "xapp" not in out.stdout and "xoxb" not in out.stdout
        engine.dispose()


def test_status_shows_held_targets_and_dead_rows_and_retry_requeues_them(tmp_path: Path) -> None:
    # #17 item 3: an operator sees what is stuck and where, and requeues dead rows in order.
    from sqlalchemy import select

    from app.store.models import Delivery

    with throwaway_database("sqlite", tmp_path) as url:
        engine = make_engine(local_settings(), url=url)
        upgrade(engine)
        sessions = session_factory(engine)
        with sessions() as session, session.begin():
            held = outbox_row("pending")
            held.target_endpoint, held.attempts = "matrix:!room:hs", 12
            held.last_error = "http_502: homeserver unavailable"
            session.add(held)
            session.add(outbox_row("pending"))  # fresh, not failing: not held
            for _ in range(2):
                session.add(outbox_row("dead"))
        db = Path(str(url.database))
        table = syncbot_status(db)
        assert "matrix:!room:hs" in table.stdout and "homeserver unavailable" in table.stdout
        assert any(line.split() == ["slack:T2/C2", "2"] for line in table.stdout.splitlines())
        data = json.loads(syncbot_status(db, "--json").stdout)
        assert data["dead_by_target"] == {"slack:T2/C2": 2}
        assert [h["target"] for h in data["held_targets"]] == ["matrix:!room:hs"]

        env = cli_env(db)
        run = (group(deliveries), env, "deliveries", "retry")
        unknown = run_cli(*run, "--sync", "nope")
        assert unknown.returncode != 0 and "no sync named 'nope'" in unknown.stderr
        done = run_cli(*run, "--dead")
        assert done.returncode == 0, done.stderr
        assert "requeued 2 dead deliveries" in done.stdout
        with sessions() as session:
            statuses = session.execute(select(Delivery.status)).scalars().all()
        assert "dead" not in statuses
        engine.dispose()
