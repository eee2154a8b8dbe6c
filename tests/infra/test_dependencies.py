"""Every package the `infra` extra installs is used by the Pulumi program or its policy pack."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Distribution name -> the module it is imported as.
_MODULES = {"PyYAML": "yaml"}


def _imported_modules() -> set[str]:
    found: set[str] = set()
    for folder in ("infra", "stacks", "policies"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found


def test_every_infra_dependency_is_imported() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["infra"]
    imported = _imported_modules()
    for requirement in extras:
        name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
        module = _MODULES.get(name, name.replace("-", "_"))
        assert module in imported, f"{name} is declared for infra but nothing imports it"
