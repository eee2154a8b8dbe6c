"""``python -m stacks.plan`` as an operator runs it: a fresh interpreter, module as ``__main__``.

The in-process CLI tests call ``stacks.plan.main`` after the whole module is imported; run as a
script, the module executes ``main`` while it is still being defined, so everything the plan
needs must be defined before the ``__main__`` guard.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_module_plans_a_shipped_stack_file_from_the_command_line() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "stacks.plan", "stacks/examples/gcp.yaml", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(completed.stdout)
    assert document["resources"]
    assert [v for v in document["violations"] if v["enforcement"] == "mandatory"] == []
