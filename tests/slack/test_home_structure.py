"""Structural guards of the App Home package: its modules render and route, the store queries."""

from __future__ import annotations

import ast
from pathlib import Path

HOME = Path(__file__).resolve().parents[2] / "app" / "slack" / "home"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports anywhere: top level, in functions, under TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_no_home_module_imports_sqlalchemy() -> None:
    modules = sorted(HOME.rglob("*.py"))
    assert len(modules) > 5, "the walk found the home package"
    offenders = {
        str(path.relative_to(HOME)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] == "sqlalchemy"
        )
        for path in modules
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_walk_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from sqlalchemy.orm import Session\n"
        "def f():\n    import sqlalchemy\n"
    )
    assert {"sqlalchemy", "sqlalchemy.orm"} <= imported_modules(module)
