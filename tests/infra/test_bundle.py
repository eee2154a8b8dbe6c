"""The Lambda bundle: deterministic zip, clear failures, and an importable entry."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from infra.bundle import (
    ROOT,
    SIZE_GOAL_BYTES,
    BundleError,
    build_bundle,
    input_hash,
    install_wheels,
    platforms,
    write_zip,
)


def _tree(root: Path) -> Path:
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (root / "pkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / "pkg" / "tool.sh").write_text("#!/bin/sh\n")
    (root / "pkg" / "tool.sh").chmod(0o755)
    (root / "bin").mkdir()
    (root / "bin" / "script").write_text("#!/usr/bin/python3.11\n")
    return root


def test_zip_is_deterministic_and_carries_no_bytecode(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    write_zip(first, source)
    (source / "pkg" / "__init__.py").touch()  # a new mtime must not change the archive
    write_zip(second, source)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        infos = {info.filename: info for info in archive.infolist()}
    assert list(infos) == sorted(infos)
    assert set(infos) == {"pkg/__init__.py", "pkg/tool.sh"}
    assert {info.date_time for info in infos.values()} == {(1980, 1, 1, 0, 0, 0)}
    assert infos["pkg/tool.sh"].external_attr >> 16 & 0o777 == 0o755
    assert infos["pkg/__init__.py"].external_attr >> 16 & 0o777 == 0o644


def test_input_hash_follows_lock_source_and_target(tmp_path: Path) -> None:
    package = _tree(tmp_path / "src") / "pkg"
    lock = tmp_path / "runtime.txt"
    lock.write_text("a==1\n")
    base = input_hash(lock, package, "x86_64")
    assert input_hash(lock, package, "arm64") != base
    (package / "__pycache__" / "y.pyc").write_bytes(b"1")
    assert input_hash(lock, package, "x86_64") == base  # bytecode is not source
    (package / "__init__.py").write_text("VALUE = 2\n")
    assert input_hash(lock, package, "x86_64") != base
    lock.write_text("a==2\n")
    assert input_hash(lock, package, "x86_64") != input_hash(lock, package, "arm64")


def test_platform_tags() -> None:
    assert platforms("arm64")[-1] == "manylinux2014_aarch64"
    assert "manylinux_2_28_x86_64" in platforms("x86_64")
    with pytest.raises(BundleError, match="unknown architecture"):
        platforms("riscv")


def test_a_missing_wheel_is_named(tmp_path: Path) -> None:
    lock = tmp_path / "runtime.txt"
    lock.write_text("syncbot-no-such-distribution==0.0.1\n")
    with pytest.raises(BundleError, match="no wheel of syncbot-no-such-distribution for CPython"):
        install_wheels(lock, tmp_path / "target", "x86_64")


def _python312() -> str | None:
    candidates = [str(p) for p in sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))]
    candidates += [found for found in (shutil.which("python3.12"),) if found]
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
            capture_output=True,
            check=False,
            timeout=60,
        )
        if probe.returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="module")
def bundle() -> Path:
    # Cached under .bundle-cache/ by input hash: only the first run downloads wheels.
    return build_bundle("x86_64").path


def test_bundle_is_for_lambda_and_under_the_size_goal(bundle: Path) -> None:
    assert bundle.stat().st_size < SIZE_GOAL_BYTES
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    assert "app/lambda_handler.py" in names or "app/__init__.py" in names
    assert not [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__" in n]
    native = [n for n in names if n.endswith(".so")]
    assert native and all("cpython-311" not in n for n in native)
    assert any("cpython-312-x86_64-linux-gnu" in n for n in native)
    assert not [n for n in names if n.startswith("bin/")]


def test_the_lambda_entry_imports_from_the_bundle_alone(bundle: Path, tmp_path: Path) -> None:
    if not (ROOT / "app" / "lambda_handler.py").exists():
        pytest.skip("app/lambda_handler.py does not exist yet")
    python = _python312()
    if python is None:
        pytest.skip("no python3.12 interpreter to import the bundle with")
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path / "task")
    task = tmp_path / "task"
    # -I: no user site, no PYTHON* env; -S: no site-packages. Only stdlib + the bundle.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import app.lambda_handler as h; "
        "import sqlalchemy, mangum, slack_bolt, cryptography.fernet; "
        "assert h.__file__.startswith(sys.argv[1]), h.__file__; "
        "assert sqlalchemy.__file__.startswith(sys.argv[1]); print(h.handler.__name__)"
    )
    result = subprocess.run(
        [python, "-I", "-S", "-c", script, str(task)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "handler"
