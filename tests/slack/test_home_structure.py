"""Structural guards of the App Home package: its modules render and route, the store queries."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

from app.slack.home.kit import Section

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


# Block Kit object types (https://docs.slack.dev/reference/block-kit/blocks, .../block-elements,
# .../composition-objects, https://docs.slack.dev/reference/views).
BLOCK_KIT_TYPES = {
    "actions", "button", "context", "conversations_select", "divider", "file_input", "header",
    "home", "image", "input", "modal", "mrkdwn", "overflow", "plain_text", "plain_text_input",
    "section", "static_select", "users_select",
}  # fmt: skip


def hand_built_blocks(path: Path) -> list[int]:
    """Lines of dict literals spelling a Block Kit object (``{"type": "section", ...}``)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values, strict=True):
            if (
                isinstance(key, ast.Constant)
                and key.value == "type"
                and isinstance(value, ast.Constant)
                and value.value in BLOCK_KIT_TYPES
            ):
                lines.append(node.lineno)
    return lines


def test_block_kit_is_spelled_only_in_blocks_py() -> None:
    found = {
        str(path.relative_to(HOME)): hand_built_blocks(path)
        for path in sorted(HOME.rglob("*.py"))
        if path.name != "blocks.py"
    }
    assert {k: v for k, v in found.items() if v} == {}
    assert hand_built_blocks(HOME / "blocks.py"), "the walk finds Block Kit where it is"


def test_every_section_is_built_with_the_kit() -> None:
    sections = []
    for path in sorted((HOME / "sections").glob("*.py")):
        module = importlib.import_module(f"app.slack.home.sections.{path.stem}")
        sections += [
            cls
            for name, cls in vars(module).items()
            if name.endswith("Section")
            and inspect.isclass(cls)
            and cls.__module__ == module.__name__
        ]
    assert len(sections) >= 6
    for cls in sections:
        assert issubclass(cls, Section), cls
        # One handler style: routes registered by the kit, never by a section of its own.
        assert cls.register is Section.register, cls
