"""The ``syncbot`` CLI: serve from a fresh directory, migrate, check, rotate-key, --help."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.cli import COMMAND_MODULES, build_parser, main
from app.settings import ENV_NAMES, load_settings
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.keyfile import DEV_KEY_FILE
from app.store.models import Workspace
from tests.wait import wait_for

REPO = Path(__file__).resolve().parent.parent
KEY_A = "first-key-0123456789-abcdefghijklmnopqrstuvwxyz"
KEY_B = "second-key-9876543210-zyxwvutsrqponmlkjihgfedcba"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bare_env(**extra: str) -> dict[str, str]:
    """The parent environment minus every syncbot variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.pop("SYNCBOT_SECRET_ARNS", None)
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def wait_for_health(proc: subprocess.Popen[str], port: int) -> httpx.Response:
    def answer() -> httpx.Response | None:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {proc.stderr.read()}")  # type: ignore[union-attr]
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        except httpx.TransportError:
            return None

    # A generous ceiling for a loaded machine; the test asserts the answer, not the time.
    return wait_for(answer, timeout=45, interval=0.2)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=bare_env(LOCAL_DEVELOPMENT="true"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc, port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_fresh_directory_starts_on_sqlite(
    serve: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    proc, port = serve
    response = wait_for_health(proc, port)
    assert response.status_code == 200
    body = response.json()
    assert body | {"status": "ok", "database": "ok", "schema": "head"} == body
    assert (tmp_path / "syncbot.db").is_file()
    key_file = tmp_path / DEV_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_text().strip()) >= 32
    proc.terminate()
    _out, err = proc.communicate(timeout=30)
    entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    # serve logs JSON: one object per line, and uvicorn's ANSI-coloured copy stays out.
    assert entries and len(entries) == len(err.splitlines()), err
    assert "color_message" not in err and "\x1b" not in err
    # The start-up summary names every part and says why it is on or off.
    [line] = [e for e in entries if e["message"].startswith("parts: ")]
    assert set(line["parts"]) == {
        "slack-events",
        "slack-oauth",
        "socket-mode",
        "matrix",
        "federation",
        "dispatch",
        "metrics",
    }
    assert line["parts"]["slack-events"] == {
        "on": False,
        "why": "SLACK_SIGNING_SECRET not set: Socket Mode only",
    }
    assert line["parts"]["metrics"]["on"] is True
    assert "matrix off (MATRIX_HOMESERVER_URL, " in line["message"]


def test_serve_runs_on_uvloop_with_its_startup_heap_frozen(
    serve: tuple[subprocess.Popen[str], int],
) -> None:
    # Both for the delivery path's CPU and its tail (app/serving.py, bench/RESULTS.md).
    proc, port = serve
    wait_for_health(proc, port)
    proc.terminate()
    _out, err = proc.communicate(timeout=30)
    [serving] = [
        e
        for e in (json.loads(line) for line in err.splitlines() if line.startswith("{"))
        if e["message"] == "serving"
    ]
    assert serving["event_loop"] == "uvloop"
    assert serving["frozen_objects"] > 10_000


def test_serve_with_unreachable_database_fails_clearly(tmp_path: Path) -> None:
    env = bare_env(
        LOCAL_DEVELOPMENT="true",
        DATABASE_BACKEND="postgresql",
        DATABASE_URL=f"postgresql://u:hunter2-password@127.0.0.1:{free_port()}/syncbot",
    )
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(free_port()), "--wait-db", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot reach the database" in done.stderr
    assert "hunter2-password" not in done.stderr + done.stdout


def test_serve_refuses_production_without_secrets(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=bare_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "refusing to start" in done.stderr
    for name in ("SLACK_SIGNING_SECRET", "TOKEN_ENCRYPTION_KEY", "SLACK_CLIENT_ID"):
        assert name in done.stderr


def test_serve_without_auto_migrate_asks_for_migrate(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOCAL_DEVELOPMENT", "true")
    monkeypatch.setenv("SYNCBOT_AUTO_MIGRATE", "false")
    assert main(["serve", "--port", str(free_port())]) == 1
    assert "run `syncbot migrate`" in capsys.readouterr().err


def test_check_lists_every_problem(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_BACKEND", "sqlite")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{clean_env / 'c.db'}")
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEY", "short")
    assert main(["check"]) == 1
    err = capsys.readouterr().err
    assert "SLACK_SIGNING_SECRET" in err and "SLACK_CLIENT_ID" in err
    assert "TOKEN_ENCRYPTION_KEY is weak" in err
    assert "run `syncbot migrate`" in err

    monkeypatch.setenv("PORT", "seventy")
    assert main(["check"]) == 1
    assert "PORT" in capsys.readouterr().err


def test_migrate_rotate_key_and_check_round_trip(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = clean_env / "rot.db"
    monkeypatch.setenv("LOCAL_DEVELOPMENT", "true")
    monkeypatch.setenv("DATABASE_BACKEND", "sqlite")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEY", KEY_A)
    assert main(["migrate"]) == 0
    assert "schema at" in capsys.readouterr().out

    old = TokenCipher(KEY_A)
    engine = make_engine(load_settings())
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        session.add(
            Workspace(
                team_id="T1",
                name="Ünïcode 🎉",
                bot_token_enc=old.encrypt("xoxb-secret-1", context="workspace.bot_token"),
                app_token_enc=old.encrypt("xapp-secret-2", context="workspace.app_token"),
            )
        )
    assert main(["check"]) == 0

    # A new key without the old one: check says the stored secrets no longer decrypt.
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEY", KEY_B)
    assert main(["check"]) == 1
    assert "do not decrypt" in capsys.readouterr().err
    assert main(["rotate-key"]) == 1
    assert "nothing changed" in capsys.readouterr().err

    monkeypatch.setenv("TOKEN_ENCRYPTION_PREVIOUS_KEYS", KEY_A)
    assert main(["rotate-key"]) == 0
    out = capsys.readouterr().out
    assert "workspaces.bot_token_enc: 1 re-encrypted" in out
    assert "total: 2" in out
    assert main(["rotate-key"]) == 0
    assert "total: 0" in capsys.readouterr().out

    monkeypatch.delenv("TOKEN_ENCRYPTION_PREVIOUS_KEYS")
    assert main(["check"]) == 0
    new = TokenCipher(KEY_B)
    with sessions() as session:
        row = session.scalars(select(Workspace)).one()
        assert new.decrypt(row.bot_token_enc or "", context="workspace.bot_token") == (
            "xoxb-secret-1"
        )
    engine.dispose()

    assert main(["migrate", "--down", "--revision", "base"]) == 0
    assert "schema at base" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["serve", "migrate", "check", "rotate-key"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, "--help"])
    assert exited.value.code == 0
    assert f"syncbot {command}" in capsys.readouterr().out


def test_command_modules_register_subcommands() -> None:
    parser = build_parser()
    assert {"app.cli.serve", "app.cli.migrate", "app.cli.check", "app.cli.keys"} <= set(
        COMMAND_MODULES
    )
    assert parser.parse_args(["migrate", "--down", "--revision", "0001"]).down is True
