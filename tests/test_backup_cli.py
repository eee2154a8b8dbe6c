"""``syncbot backup``, ``syncbot restore`` and ``syncbot reset-db`` (issue 4)."""

from __future__ import annotations

import io
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from app.cli import build_parser, main
from app.cli.backup import ProgressBar
from app.settings import ENV_NAMES, load_settings
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.models import Workspace
from tests import builders

KEY = "cli-backup-key-0123456789-abcdefghijklmnopqrstuvwxyz"
OTHER_KEY = "cli-other-key-0123456789-abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database named by the environment, with two workspaces."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOCAL_DEVELOPMENT", "true")
    monkeypatch.setenv("DATABASE_BACKEND", "sqlite")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEY", KEY)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    assert main(["migrate"]) == 0
    engine = make_engine(load_settings())
    sessions = session_factory(engine)
    builders.workspace(sessions, TokenCipher(KEY), "T1")
    builders.workspace(sessions, TokenCipher(KEY), "T2")
    yield engine
    engine.dispose()


def workspaces(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Workspace)).scalar_one())


def test_backup_reset_restore_round_trip(
    db: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "syncbot.backup"
    assert main(["backup", str(target)]) == 0
    assert "backup written: 2 row(s)" in capsys.readouterr().err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".syncbot.backup")] == []

    # reset-db needs ENABLE_DB_RESET, then --yes.
    assert main(["reset-db", "--yes"]) == 1
    assert "ENABLE_DB_RESET" in capsys.readouterr().err
    assert workspaces(db) == 2
    monkeypatch.setenv("ENABLE_DB_RESET", "true")
    assert main(["reset-db"]) == 1
    assert "--yes" in capsys.readouterr().err
    assert workspaces(db) == 2
    assert main(["reset-db", "--yes"]) == 0
    assert "every table is empty" in capsys.readouterr().out
    assert workspaces(db) == 0

    # restore asks first; without a terminal to ask on it refuses.
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    assert main(["restore", str(target)]) == 1
    assert "restore cancelled" in capsys.readouterr().err
    assert workspaces(db) == 0
    assert main(["restore", str(target), "--yes"]) == 0
    assert "restored: 2 row(s)" in capsys.readouterr().out
    assert workspaces(db) == 2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_restore_asks_on_a_terminal(
    db: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "b.backup"
    assert main(["backup", str(target)]) == 0
    monkeypatch.setenv("ENABLE_DB_RESET", "true")
    assert main(["reset-db", "--yes"]) == 0
    monkeypatch.setattr("sys.stdin", Terminal("no\n"))
    assert main(["restore", str(target)]) == 1
    err = capsys.readouterr().err
    assert "replaces EVERY row" in err and "restore cancelled" in err
    assert workspaces(db) == 0
    monkeypatch.setattr("sys.stdin", Terminal("yes\n"))
    assert main(["restore", str(target)]) == 0
    assert workspaces(db) == 2


def test_restore_refuses_a_modified_file_and_another_key(
    db: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "b.backup"
    assert main(["backup", str(target)]) == 0
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x80
    damaged = tmp_path / "damaged.backup"
    damaged.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["restore", str(damaged), "--yes"]) == 1
    assert "modified" in capsys.readouterr().err
    assert workspaces(db) == 2

    monkeypatch.setenv("TOKEN_ENCRYPTION_KEY", OTHER_KEY)
    assert main(["restore", str(target), "--yes"]) == 1
    assert "another TOKEN_ENCRYPTION_KEY" in capsys.readouterr().err
    assert main(["restore", str(tmp_path / "missing.backup"), "--yes"]) == 1
    assert "no such file" in capsys.readouterr().err
    assert workspaces(db) == 2


def test_backup_to_stdout(db: Engine, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["backup", "-"]) == 0
    out = capsysbinary.readouterr().out
    assert out.startswith(b"syncbot-backup/1 key=")


def test_backup_of_an_unmigrated_database_fails_clearly(
    db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(SystemExit) as exited:
        main(["backup", str(tmp_path / "x.backup")])
    assert exited.value.code == 1
    assert "syncbot migrate" in capsys.readouterr().err
    assert not (tmp_path / "x.backup").exists()


def test_progress_bar_draws_only_on_a_terminal() -> None:
    screen = Terminal()
    bar = ProgressBar("restore", stream=screen, width=10)
    for done in (0, 5, 5, 10):
        bar(done, 10)
    bar.finish()
    drawn = screen.getvalue()
    assert drawn.count("\r") == 3  # a repeated percentage is not redrawn
    assert "[#####-----]  50% 5/10 rows" in drawn and drawn.endswith("100% 10/10 rows\n")
    pipe = io.StringIO()
    quiet = ProgressBar("backup", stream=pipe)
    quiet(1, 2)
    quiet.finish()
    assert pipe.getvalue() == ""


@pytest.mark.parametrize("command", ["backup", "restore", "reset-db"])
def test_commands_have_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([command, "--help"])
    assert exited.value.code == 0
    assert f"syncbot {command}" in capsys.readouterr().out
