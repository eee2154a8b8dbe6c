"""The type checker is part of the lint every CI run does (#16): ``make lint`` (what ``.ci/run``
and the workflow call) runs mypy, configured strict on the sync core and its store."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_recipe() -> list[str]:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert match, "the Makefile has a lint target"
    return [line.strip() for line in match.group(1).splitlines()]


def test_make_lint_runs_mypy_and_ci_runs_make_lint() -> None:
    assert any(line.endswith("/mypy") or " mypy" in line for line in _lint_recipe())
    assert "make lint" in (ROOT / ".ci" / "run").read_text()
    workflow = (ROOT / ".github" / "workflows" / "test.yml").read_text()
    assert ".venv/bin/mypy" in workflow


def test_mypy_checks_app_and_holds_core_and_store_to_strict() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert "app" in config["files"]
    strict = [o for o in config.get("overrides", []) if o.get("strict")]
    modules = {
        m for o in strict for m in ([o["module"]] if isinstance(o["module"], str) else o["module"])
    }
    assert {"app.core.*", "app.store.*"} <= modules
    # No blanket escape hatches: only named third-party modules may be missing.
    assert not config.get("ignore_missing_imports")
    assert not config.get("ignore_errors")
    dev = (ROOT / "requirements" / "dev.txt").read_text()
    assert re.search(r"^mypy==", dev, re.MULTILINE), "mypy is pinned in the dev lock"
