"""The Dockerfile's image serves ``/health`` with only runtime dependencies.

There is no Docker engine on the build machines, so this test reads the Dockerfile, replays its
build stage (the same COPY sources, the same pip install arguments, via uv) into a fresh
virtualenv standing in for ``/opt/syncbot``, then starts the image's CMD from that virtualenv
on a loopback port and waits for ``/health`` to answer 200.
"""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from infra.contract import CONTAINER_SERVE_COMMAND, HEALTH_PATH
from tests.wait import wait_for

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
VENV_IN_IMAGE = "/opt/syncbot"
# Packages that belong to the infra or dev groups and must never reach the image.
NOT_RUNTIME = ("pulumi", "pulumi_gcp", "pulumi_aws", "pytest", "hypothesis", "synapse", "ruff")
STARTUP_DEADLINE = 90.0


@dataclass
class Stage:
    base: str
    name: str | None
    workdir: str = "/"
    steps: list[tuple[str, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    cmd: list[str] | None = None
    healthcheck: list[str] | None = None
    volumes: list[str] = field(default_factory=list)


def parse_dockerfile(text: str) -> list[Stage]:
    """Split the Dockerfile into stages of (instruction, arguments) steps."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        rest = rest.strip()
        if instruction == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
            continue
        stage = stages[-1]
        if instruction == "WORKDIR":
            stage.workdir = rest
        elif instruction == "ENV":
            for token in shlex.split(rest):
                key, _, value = token.partition("=")
                stage.env[key] = value
        elif instruction == "USER":
            stage.user = rest
        elif instruction == "CMD":
            stage.cmd = json.loads(rest)
        elif instruction == "HEALTHCHECK":
            _options, _, command = rest.partition("CMD ")
            stage.healthcheck = json.loads(command)
        elif instruction == "VOLUME":
            stage.volumes.extend(json.loads(rest))
        elif instruction in ("COPY", "RUN"):
            stage.steps.append((instruction, rest))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_image_shape(stages: list[Stage]) -> None:
    build, final = stages
    assert build.name == "build"
    assert build.base == final.base == "python:3.12-slim"
    # The final stage takes nothing from the build context, only the built virtualenv.
    copies = [rest for kind, rest in final.steps if kind == "COPY"]
    assert copies == [f"--from=build {VENV_IN_IMAGE} {VENV_IN_IMAGE}"]
    assert final.user is not None and final.user.split(":")[0] not in ("0", "root")
    assert final.cmd == list(CONTAINER_SERVE_COMMAND)
    assert final.env["PATH"].startswith(f"{VENV_IN_IMAGE}/bin:")
    # The embedded SQLite default writes to a volume, not the container's layer.
    assert final.volumes == ["/data"] and final.env["SYNCBOT_DATA_DIR"] == "/data"
    assert final.healthcheck is not None and final.healthcheck[0] == "python"


def test_dockerignore_admits_every_copied_source(stages: list[Stage]) -> None:
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for kind, rest in stages[0].steps:
        if kind == "COPY":
            *sources, _dest = rest.split()
            assert set(sources) <= allowed, f"{sources} excluded by .dockerignore"


def _replay_build(stage: Stage, root: Path) -> Path:
    """Replay the build stage's steps; return the virtualenv standing in for /opt/syncbot."""
    workdir = root / "src"
    venv = root / "venv"
    workdir.mkdir()
    python = _image_python()
    for kind, rest in stage.steps:
        if kind == "COPY":
            *sources, dest = rest.split()
            target = workdir / dest
            for source in sources:
                origin = REPO / source
                into = target / origin.name if dest.endswith("/") else target
                if origin.is_dir():
                    shutil.copytree(origin, into, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    into.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, into)
            continue
        argv = shlex.split(rest)
        # uv when this machine has it (seconds); the image's own venv + pip otherwise, so the
        # test runs on a fresh machine too.
        uv = shutil.which("uv")
        if argv == ["python", "-m", "venv", VENV_IN_IMAGE]:
            if uv:
                command = [uv, "venv", "--quiet", "--python", python, str(venv)]
            else:
                command = [python, "-m", "venv", str(venv)]
        elif argv[:2] == [f"{VENV_IN_IMAGE}/bin/pip", "install"]:
            if uv:
                command = [uv, "pip", "install", "--quiet", "--python", str(venv / "bin/python")]
            else:
                command = [str(venv / "bin/pip"), "install", "--quiet"]
                command += ["--disable-pip-version-check"]
            command += argv[2:]
        else:
            pytest.fail(f"build step the test cannot replay: RUN {rest}")
        subprocess.run(command, cwd=workdir, check=True, timeout=300)
    return venv


def _image_python() -> str:
    """The image's Python (3.12) when one runs here, else the interpreter running the tests."""
    candidates = [str(p) for p in sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))]
    candidates += [found for found in (shutil.which("python3.12"),) if found]
    for candidate in candidates:
        # pyenv shims exist even when they cannot run the version; ask the interpreter itself.
        probe = subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return sys.executable


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except (urllib.error.URLError, OSError):
        return None


@pytest.mark.integration
def test_entry_serves_health_from_runtime_only_install(
    stages: list[Stage], tmp_path: Path
) -> None:
    build, final = stages
    venv = _replay_build(build, tmp_path)

    probe = "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in sys.argv[1:]))"
    leaked = subprocess.run([str(venv / "bin/python"), "-c", probe, *NOT_RUNTIME], check=False)
    assert leaked.returncode == 0, "a non-runtime package is installed in the image"

    assert final.cmd is not None
    command = list(final.cmd)
    # The image binds every interface; the test binds loopback only.
    command[command.index("--host") + 1] = "127.0.0.1"
    port = _free_port()
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "PORT": str(port),
        "DATABASE_BACKEND": "sqlite",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        # No secrets exist here; local development lets the app start without them.
        "LOCAL_DEVELOPMENT": "true",
    }
    executable = shutil.which(command[0], path=env["PATH"])
    assert executable == str(venv / "bin" / command[0])
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [executable, *command[1:]], cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:

        def healthy_or_exited() -> bool:
            return proc.poll() is not None or _get(f"http://127.0.0.1:{port}{HEALTH_PATH}") == 200

        wait_for(healthy_or_exited, timeout=STARTUP_DEADLINE, interval=0.1)
        status = _get(f"http://127.0.0.1:{port}{HEALTH_PATH}") if proc.poll() is None else None
        output = (tmp_path / "serve.log").read_text(errors="replace")
        assert status == 200, f"/health never answered 200 (exit {proc.poll()}):\n{output}"
        # The image's HEALTHCHECK, run as Docker runs it: healthy now, unhealthy elsewhere.
        assert final.healthcheck is not None
        check = [str(venv / "bin" / final.healthcheck[0]), *final.healthcheck[1:]]
        healthy = subprocess.run(check, env=env, capture_output=True, timeout=30)
        assert healthy.returncode == 0, healthy.stderr
        elsewhere = {**env, "PORT": str(_free_port())}
        assert subprocess.run(check, env=elsewhere, capture_output=True, timeout=30).returncode
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
