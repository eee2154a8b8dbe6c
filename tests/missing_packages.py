"""Run Python code in a child process where some installed packages seem not to be."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

_BLOCKER = """\
import importlib.abc, sys
MISSING = {missing!r}
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in MISSING:
            raise ModuleNotFoundError(f'No module named {{name!r}}', name=name)
sys.meta_path.insert(0, Missing())
"""


def run_without(
    packages: Iterable[str], code: str, *, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child Python in which importing any of the top-level ``packages``
    fails as it would were they not installed (``ModuleNotFoundError``)."""
    script = _BLOCKER.format(missing=sorted(set(packages))) + code
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60
    )
