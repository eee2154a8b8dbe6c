"""Tests wait for conditions, never for a fixed time (#16): every ``sleep`` under ``tests/`` is
either the poll inside :mod:`tests.wait` or part of what a fake simulates, marked as such."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
POLLER = TESTS / "wait.py"


def _sleeps(tree: ast.AST) -> list[ast.Call]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name != "sleep":
            continue
        zero = (
            len(node.args) == 1
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == 0
        )
        if not zero:  # sleep(0) only yields to the loop
            found.append(node)
    return found


def _marked_simulated(lines: list[str], lineno: int) -> bool:
    """The call's line, or the comment lines right above it, say it is simulated."""
    if "simulated" in lines[lineno - 1].lower():
        return True
    i = lineno - 2
    while i >= 0 and lines[i].strip().startswith("#"):
        if "simulated" in lines[i].lower():
            return True
        i -= 1
    return False


def test_no_fixed_sleeps_in_tests() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if path == POLLER:
            continue
        source = path.read_text()
        lines = source.splitlines()
        for call in _sleeps(ast.parse(source)):
            if not _marked_simulated(lines, call.lineno):
                offenders.append(f"{path.relative_to(TESTS.parent)}:{call.lineno}")
    assert not offenders, (
        "wait for a condition with tests.wait.wait_for instead of sleeping "
        "(or mark a sleep that is part of a fake's behaviour as simulated):\n"
        + "\n".join(offenders)
    )
