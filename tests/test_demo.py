"""``syncbot demo`` (``make demo``): run as a newcomer runs it, and read what it printed."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.demo.run import run_demo
from app.demo.scenario import SIDES
from app.settings import ENV_NAMES, FILE_ENV_NAMES

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("post", "edit", "thread", "reaction", "file", "delete")


def test_the_demo_shows_every_kind_arriving_on_every_side(tmp_path: Path) -> None:
    # No syncbot variable at all (and a broken one would not matter: the demo reads none).
    env = {k: v for k, v in os.environ.items() if k not in (*ENV_NAMES, *FILE_ENV_NAMES)}
    env |= {"PYTHONPATH": str(ROOT), "LOG_LEVEL": "LOUD", "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "--no-matrix"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "Traceback" not in out + done.stderr
    assert not [line for line in out.splitlines() if line.startswith("{")]
    # Each step, in order, with a copy arriving on each of the two other sides.
    steps = re.split(r"^\[\d/6\] ", out, flags=re.M)[1:]
    assert [s.split()[0] for s in steps] == list(KINDS)
    names = {side.name for side in SIDES}
    for step in steps:
        actor = step.split()[3]
        arrived = re.findall(r"^ {6}✓ (\w+) +#general +(.+?)  \(\d+\.\d\d s\)$", step, re.M)
        assert {side for side, _ in arrived} == names - {actor}, step
    post, edit, thread, reaction, file_, delete = steps
    assert "Ada (Acme): Hello from Acme!" in post
    assert "(edited: yes, three workspaces)" in edit
    assert "Bob (Beta): Welcome, Ada!" in thread and "(in the thread)" in thread
    assert ":tada: on the post" in reaction
    assert "notes.txt (38 bytes, same content)" in file_
    assert "the copy is gone" in delete
    # ... then the summary: every side of every kind, nothing left in the outbox.
    summary = out.split("Summary\n", 1)[1]
    for kind in KINDS:
        row = re.search(rf"^  {kind} +(.+)$", summary, re.M)
        assert row is not None and row.group(1).split().count("origin") == 1, summary
        assert "MISSING" not in row.group(1)
    assert "✓ 12/12 copies arrived on every side" in summary
    assert "outbox: 0 waiting, 0 dead" in summary
    # It ran the production service: the start-up summary of its parts is shown.
    assert "slack-events on (POST /slack/events" in out


def test_on_a_terminal_the_demo_draws_a_progress_line(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_demo(out, data_dir=tmp_path / "kept", live=True) == 0
    text = out.getvalue()
    assert re.search(r"\r\x1b\[2K  \[#+-*\] [|/\\-] waiting for ", text)
    # Kept where asked: the database the demo used.
    assert (tmp_path / "kept" / "syncbot.db").is_file()


def test_copies_that_do_not_arrive_fail_the_demo_clearly(tmp_path: Path) -> None:
    # With no time to wait, the first step's copies are not looked for: said, and exit 1.
    out = io.StringIO()
    assert run_demo(out, timeout=0.0, data_dir=tmp_path) == 1
    text = out.getvalue()
    assert "nothing after 0 s" in text and "MISSING" in text
    assert "some copies did not arrive" in text


def test_with_a_homeserver_at_hand_a_matrix_room_is_one_more_side(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_demo(out, data_dir=tmp_path, matrix=True) == 0
    text = out.getvalue()
    steps = re.split(r"^\[\d/7\] ", text, flags=re.M)[1:]
    assert [s.split()[0] for s in steps] == [*KINDS[:-1], "matrix", "delete"]
    in_room = [re.search(r"^ {6}✓ Matrix +the room +(.+)  \(", s, re.M) for s in steps]
    shown = [m.group(1) if m else None for m in in_room]
    # The ghost's name shows once its profile is set (the id until then: a race to read).
    assert shown[0] is not None and shown[0].endswith(": Hello from Acme! 👋 Is everyone here?")
    assert shown[1] is not None and shown[1].endswith("(m.replace)")
    assert shown[2] is not None
    assert shown[2].endswith(
        ": Welcome, Ada! Bob from Beta, replying in the thread.  (in the thread)"
    )
    assert shown[3] == "🎉 on the post"
    assert shown[4] == "notes.txt (38 bytes, m.file)"
    assert shown[5] is None  # Alice posted from the room
    assert shown[6] == "the copy is redacted"
    # Alice's message reached all three workspaces.
    assert len(re.findall(r"Hi all, Alice here, writing from Matrix  \(", steps[5])) == 3
    assert "✓ 21/21 copies arrived on every side" in text
    assert "matrix on (appservice for localhost)" in text


def test_matrix_is_on_by_default_only_with_a_homeserver_at_hand(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from app.cli import build_parser, main

    assert build_parser().parse_args(["demo"]).matrix is None
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "synapse" else real(name, *a)
    )
    assert main(["demo", "--matrix"]) == 1
    err = capsys.readouterr().err
    assert "matrix-synapse package is not installed" in err and "make test" in err
