"""Every ``syncbot`` command, run the way a newcomer runs it: with no environment at all and with
a broken one. None may end in a traceback; each says what is wrong and how to fix it (issue 20).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from app.cli import build_parser, main
from app.settings import ENV_NAMES, FILE_ENV_NAMES

# One invocation per leaf command, with the arguments it requires, and for the empty
# environment the fix its message must name.
COMMANDS: dict[str, tuple[list[str], str]] = {
    "serve": (["serve", "--port", "1"], "TOKEN_ENCRYPTION_KEY"),
    "check": (["check", "--wait-db", "1"], "make a key with"),
    "rotate-key": (["rotate-key", "--wait-db", "1"], "TOKEN_ENCRYPTION_KEY"),
    "workspace add": (["workspace", "add", "--bot-token", "xoxb-1-2-x"], "TOKEN_ENCRYPTION_KEY"),
    "workspace list": (["workspace", "list"], "TOKEN_ENCRYPTION_KEY"),
    "sync create": (["sync", "create", "x"], "TOKEN_ENCRYPTION_KEY"),
    "sync add": (["sync", "add", "x", "matrix:!r:example.org"], "TOKEN_ENCRYPTION_KEY"),
    "sync remove": (["sync", "remove", "x", "slack:T1/C1"], "TOKEN_ENCRYPTION_KEY"),
    "sync list": (["sync", "list"], "TOKEN_ENCRYPTION_KEY"),
    "status": (["status"], "TOKEN_ENCRYPTION_KEY"),
    "peer invite": (["peer", "invite", "x"], "TOKEN_ENCRYPTION_KEY"),
    "peer join": (["peer", "join", "code", "--sync", "x"], "TOKEN_ENCRYPTION_KEY"),
    "peer list": (["peer", "list"], "TOKEN_ENCRYPTION_KEY"),
    "peer remove": (["peer", "remove", "inst"], "TOKEN_ENCRYPTION_KEY"),
    "peer rotate-key": (["peer", "rotate-key"], "TOKEN_ENCRYPTION_KEY"),
    "registration": (["registration"], "syncbot registration --generate"),
    "backup": (["backup", "out.json"], "TOKEN_ENCRYPTION_KEY"),
    "restore": (["restore", "in.json", "--yes"], "TOKEN_ENCRYPTION_KEY"),
    "reset-db": (["reset-db", "--yes"], "ENABLE_DB_RESET"),
    "deliveries retry": (["deliveries", "retry"], "TOKEN_ENCRYPTION_KEY"),
}
# Commands that need nothing from the environment and rightly succeed without one: the
# migration of the embedded SQLite default, and printing a manifest for a given URL.
NEEDS_NOTHING: dict[str, list[str]] = {
    "migrate": ["migrate", "--wait-db", "1"],
    "manifest": ["manifest", "--url", "https://sync.example.org"],
}

BROKEN = {
    "LOG_LEVEL": "LOUD",
    "TOKEN_ENCRYPTION_KEY_FILE": "/nonexistent/syncbot-key",
}


def leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    leaves = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                leaves.extend(leaf_commands(sub, f"{prefix} {name}".strip()))
    return leaves or [prefix]


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (*ENV_NAMES, *FILE_ENV_NAMES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    # What `restore` is given: a file that is there but is no backup.
    (tmp_path / "in.json").write_text("not a backup\n")
    return tmp_path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run one command in-process; any exception escaping ``main`` is a traceback."""
    try:
        code = main(argv)
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_table_covers_every_command() -> None:
    leaves = set(leaf_commands(build_parser()))
    assert leaves - {"demo"} == set(COMMANDS) | set(NEEDS_NOTHING)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_with_no_environment_every_command_says_what_to_fix(
    command: str, no_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, fix = COMMANDS[command]
    code, output = run(argv, capsys)
    assert code != 0, output
    assert "Traceback" not in output
    assert output.startswith("syncbot: "), output
    assert fix in output, output


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_with_a_broken_environment_every_command_names_the_variables(
    command: str,
    no_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in BROKEN.items():
        monkeypatch.setenv(name, value)
    code, output = run(COMMANDS[command][0], capsys)
    assert code != 0, output
    assert "Traceback" not in output
    assert "LOG_LEVEL: expected one of" in output, output
    assert "TOKEN_ENCRYPTION_KEY_FILE=/nonexistent/syncbot-key: cannot read it" in output


@pytest.mark.parametrize("command", sorted(NEEDS_NOTHING))
def test_commands_that_need_no_environment_work_without_one(
    command: str, no_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(NEEDS_NOTHING[command], capsys)
    assert code == 0, output
    assert "Traceback" not in output


def test_migrate_with_a_broken_environment_names_the_variables(
    no_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in BROKEN.items():
        monkeypatch.setenv(name, value)
    code, output = run(NEEDS_NOTHING["migrate"], capsys)
    assert code != 0 and "Traceback" not in output
    assert "LOG_LEVEL: expected one of" in output


def test_every_argument_has_help() -> None:
    def walk(parser: argparse.ArgumentParser, path: str) -> list[str]:
        missing = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    missing.extend(walk(sub, f"{path} {name}"))
            elif not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
        return missing

    assert walk(build_parser(), "syncbot") == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("syncbot ") and out.split()[1][0].isdigit()
