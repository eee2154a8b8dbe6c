"""The Makefile bootstraps on any Python >= 3.11: uv when it is there, venv + pip when it is not.

A stock Debian Python refuses ``pip install`` outside a venv (PEP 668), so the fallback must
never install anything into the system Python; these tests read ``make -n`` (what would run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.missing_packages import run_without

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def dry_run(target: str, tmp_path: Path, *, with_uv: bool) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if with_uv:
        fake_uv = bin_dir / "uv"
        fake_uv.write_text("#!/bin/sh\nexit 0\n")
        fake_uv.chmod(0o755)
    # A PATH with the shell tools only: no uv anywhere, and a Python (this venv's) without uv.
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / 'venv'}", f"PYTHON={sys.executable}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_without_uv_make_run_uses_venv_and_pip_and_never_the_system_pip(tmp_path: Path) -> None:
    assert subprocess.run(
        [sys.executable, "-m", "uv", "--version"], capture_output=True
    ).returncode
    lines = dry_run("run", tmp_path, with_uv=False)
    text = "\n".join(lines)
    assert f"{sys.executable} -m venv {tmp_path / 'venv'}" in text
    venv_python = f"{tmp_path / 'venv'}/bin/python"
    assert f"{venv_python} -m pip install --quiet --disable-pip-version-check -r " in text
    assert "requirements/runtime.txt" in text
    # Installing uv (or anything) with the system Python's pip is what PEP 668 refuses.
    for line in lines:
        assert not line.startswith(f"{sys.executable} -m pip"), line
        assert "install uv" not in line and "install --quiet uv" not in line, line
    assert lines[-1].endswith("/bin/syncbot serve")


def test_with_uv_on_path_make_uses_it(tmp_path: Path) -> None:
    text = "\n".join(dry_run("test", tmp_path, with_uv=True))
    uv = tmp_path / "bin" / "uv"
    assert f"{uv} venv --python 3.11" in text
    assert f"{uv} pip install --python {tmp_path / 'venv'}/bin/python --quiet -r " in text
    assert "requirements/dev.txt" in text


def test_make_infra_installs_the_pulumi_extra_pinned_by_the_lock(tmp_path: Path) -> None:
    text = "\n".join(dry_run("infra", tmp_path, with_uv=False))
    assert "-c requirements/dev.txt -e '.[infra]'" in text


def test_make_demo_runs_the_demo_command(tmp_path: Path) -> None:
    lines = dry_run("demo", tmp_path, with_uv=False)
    assert lines[-1] == f"{tmp_path / 'venv'}/bin/syncbot demo"


def test_the_fallback_really_builds_a_venv_with_pip(tmp_path: Path) -> None:
    # The first step for real (seconds, no network): the venv module makes a venv with pip.
    venv = tmp_path / "venv"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    done = subprocess.run(
        ["make", str(venv / "bin" / "python"), f"VENV={venv}", f"PYTHON={sys.executable}"],
        cwd=REPO,
        env={**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "--version"], capture_output=True, text=True
    )
    assert pip.returncode == 0, pip.stderr


def test_the_offline_plan_without_the_pulumi_packages_says_make_infra(tmp_path: Path) -> None:
    # The venv of `make run` has no Pulumi (nor PyYAML): the README's plan command says what
    # to do instead of ending in "No module named 'pulumi'".
    script = (
        "import runpy, sys\n"
        "sys.argv = ['stacks.plan', 'Pulumi.dev.yaml']\n"
        "runpy.run_module('stacks.plan', run_name='__main__')\n"
    )
    done = run_without(["pulumi", "yaml"], script, cwd=REPO)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "run `make infra`" in done.stderr and "pulumi is not installed" in done.stderr
