"""``compose.yaml``: syncbot + PostgreSQL + Synapse, validated without a Docker engine.

There is no Docker here, so ``docker compose up`` cannot run. Instead: the file's shape (services,
health checks, volumes, start order), syncbot's environment names against the contract, the
documented ``make .env`` run for real and compose's variable interpolation applied with its
output, and what the containers would then run: settings ``syncbot serve`` accepts in production,
a registration equal to ``syncbot registration``'s, and a Synapse config that loads it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from app.matrix.registration import registration_yaml
from app.parts import parts
from app.settings import ENV_NAMES, load_settings
from infra.contract import ENV_BY_NAME
from tests.wait import wait_for

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose.yaml"
DOCS = ROOT / "docs" / "self-hosting.md"

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class Unset(Exception):
    """A ``${VAR:?message}`` whose variable is unset: compose refuses to start."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: ``$$``, ``${V}``, ``${V:-default}``, ``${V-default}``,
    ``${V:?error}`` (https://docs.docker.com/reference/compose-file/interpolation/)."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name)
        empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if empty else str(value)
        if op in (":?", "?"):
            if empty:
                raise Unset(f"{name}: {arg}")
            return str(value)
        return value or ""

    return _VAR.sub(sub, text)


def load(env: Mapping[str, str]) -> dict[str, Any]:
    return yaml.safe_load(interpolate(COMPOSE.read_text(), env))


def syncbot_env(compose: dict[str, Any]) -> dict[str, str]:
    # An empty value (`KEY:`) is YAML null: compose then passes nothing.
    environment = compose["services"]["syncbot"]["environment"]
    return {k: str(v) for k, v in environment.items() if v is not None}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def dotenv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The documented first command, run for real: ``make .env``."""
    path = tmp_path_factory.mktemp("compose") / ".env"
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    done = subprocess.run(
        ["make", str(path), f"COMPOSE_ENV={path}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert path.stat().st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in path.read_text().splitlines() if line)
    # A second run keeps the secrets: everything stored depends on them.
    again = subprocess.run(
        ["make", str(path), f"COMPOSE_ENV={path}"], cwd=ROOT, env=env, capture_output=True
    )
    assert again.returncode == 0
    assert dict(line.split("=", 1) for line in path.read_text().splitlines() if line) == values
    return values


def test_services_health_checks_volumes_and_start_order(raw: dict[str, Any]) -> None:
    services = raw["services"]
    assert set(services) == {"syncbot", "postgres", "synapse"}
    for name, service in services.items():
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") == "unless-stopped", name
    assert services["syncbot"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "synapse": {"condition": "service_healthy"},
    }
    assert "/health" in " ".join(services["syncbot"]["healthcheck"]["test"])
    assert "/health" in " ".join(services["synapse"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    # Named volumes for everything stateful, declared at the top level.
    declared = set(raw["volumes"])
    used = {
        mount.split(":", 1)[0]
        for service in services.values()
        for mount in service.get("volumes", [])
    }
    assert used == declared == {"postgres", "synapse"}
    # Published on loopback only: a TLS proxy goes in front for the internet.
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port
    assert services["syncbot"]["build"] == "."


def test_syncbot_environment_names_are_the_contracts(raw: dict[str, Any]) -> None:
    names = set(raw["services"]["syncbot"]["environment"])
    assert names <= set(ENV_NAMES), names - set(ENV_NAMES)
    not_in_contract = names - set(ENV_BY_NAME)
    # Every variable compose sets is one infra's contract knows (and deploys).
    assert not not_in_contract, not_in_contract


def test_compose_refuses_to_start_without_the_secrets() -> None:
    with pytest.raises(Unset, match=r"run `make \.env` first"):
        load({})


def test_make_env_gives_a_production_ready_syncbot(dotenv: dict[str, str]) -> None:
    compose = load(dotenv)
    env = syncbot_env(compose)
    settings = load_settings(env)
    # What `syncbot serve` checks before it starts outside local development.
    assert settings.production_problems() == []
    assert not settings.local_development and settings.database_backend == "postgresql"
    assert settings.matrix_enabled and settings.metrics_token
    on = {p.name for p in parts(settings, socket_workspaces=0) if p.on}
    assert {"matrix", "metrics", "dispatch"} <= on
    # syncbot's database is the postgres service's.
    postgres = compose["services"]["postgres"]["environment"]
    assert env["DATABASE_HOST"] == "postgres"
    assert env["DATABASE_USER"] == postgres["POSTGRES_USER"]
    assert env["DATABASE_SCHEMA"] == postgres["POSTGRES_DB"]
    assert env["DATABASE_PASSWORD"] == postgres["POSTGRES_PASSWORD"] == dotenv["POSTGRES_PASSWORD"]
    published = compose["services"]["syncbot"]["ports"][0].rsplit(":", 1)[1]
    assert published == env["PORT"]


def test_synapse_loads_the_registration_syncbot_prints(dotenv: dict[str, str]) -> None:
    compose = load(dotenv)
    env = syncbot_env(compose)
    settings = load_settings(env)
    configs = compose["configs"]
    registration = yaml.safe_load(configs["syncbot-registration"]["content"])
    expected = yaml.safe_load(registration_yaml(settings, url="http://syncbot:3000"))
    assert registration == expected
    homeserver = yaml.safe_load(configs["synapse-homeserver"]["content"])
    mounted = {c["source"]: c["target"] for c in compose["services"]["synapse"]["configs"]}
    assert homeserver["app_service_config_files"] == [mounted["syncbot-registration"]]
    assert compose["services"]["synapse"]["command"][-1] == mounted["synapse-homeserver"]
    assert homeserver["server_name"] == settings.matrix_server_name
    # syncbot reaches the homeserver where it listens, and Synapse reaches syncbot likewise.
    hs = urlsplit(str(settings.matrix_homeserver_url))
    assert hs.hostname == "synapse"
    assert hs.port == homeserver["listeners"][0]["port"]
    assert urlsplit(registration["url"]).hostname == "syncbot"
    assert urlsplit(registration["url"]).port == int(env["PORT"])
    for key in ("macaroon_secret_key", "form_secret", "registration_shared_secret"):
        assert len(homeserver[key]) >= 32, key
    assert homeserver["enable_registration"] is False


def test_the_documented_commands(raw: dict[str, Any]) -> None:
    text = DOCS.read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == [
        "make .env",
        "docker compose up -d --build",
        "curl -fsS http://127.0.0.1:3000/health",
    ]
    # The port curl asks is the one syncbot is published on; `make .env` is a real target.
    assert raw["services"]["syncbot"]["ports"] == ["127.0.0.1:3000:3000"]
    dry = subprocess.run(
        ["make", "-n", "/nonexistent/.env", "COMPOSE_ENV=/nonexistent/.env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0 and "registration --generate" in dry.stdout
    head = COMPOSE.read_text().split("\n\n", 1)[0]
    for command in commands:
        assert command.split("#")[0].strip() in head


def _wait(
    url: str, proc: subprocess.Popen[bytes], log: Path, *, headers: dict[str, str] | None = None
) -> int:
    import urllib.error
    import urllib.request

    def status() -> int | None:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=3) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    return wait_for(
        status, timeout=120, interval=0.2, context=lambda: f"{url}:\n{log.read_text()[-3000:]}"
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration
def test_what_the_containers_run_comes_up_on_loopback(
    dotenv: dict[str, str], tmp_path: Path
) -> None:
    """Synapse with the compose file's config and registration, syncbot with its environment
    and PostgreSQL: only the host names and ports are mapped to loopback."""
    import json
    import sys
    import urllib.request

    from tests.databases import throwaway_database

    compose = load(dotenv)
    hs_port, app_port = _free_port(), _free_port()
    config, data = tmp_path / "config", tmp_path / "data"
    config.mkdir()
    data.mkdir()

    def local(text: str) -> str:
        return (
            text.replace("/data/", f"{data}/")
            .replace("/config/", f"{config}/")
            .replace("port: 8008", f"port: {hs_port}")
            .replace('"0.0.0.0"', '"127.0.0.1"')
            .replace("http://syncbot:3000", f"http://127.0.0.1:{app_port}")
        )

    for name, target in (
        ("synapse-homeserver", "homeserver.yaml"),
        ("syncbot-registration", "syncbot-registration.yaml"),
    ):
        (config / target).write_text(local(compose["configs"][name]["content"]))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        hs_log = tmp_path / "synapse.log"
        synapse = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "synapse.app.homeserver",
                "-c",
                str(config / "homeserver.yaml"),
            ],
            cwd=data,
            stdout=hs_log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        procs.append(synapse)
        assert _wait(f"http://127.0.0.1:{hs_port}/health", synapse, hs_log) == 200
        # Synapse loaded the registration: the appservice token is the bridge bot's.
        who = urllib.request.Request(
            f"http://127.0.0.1:{hs_port}/_matrix/client/v3/account/whoami",
            headers={"Authorization": f"Bearer {dotenv['MATRIX_AS_TOKEN']}"},
        )
        with urllib.request.urlopen(who, timeout=10) as response:
            assert json.load(response)["user_id"] == "@slackbot:localhost"

        with throwaway_database("postgresql", tmp_path) as url:
            env = syncbot_env(compose) | {
                "DATABASE_HOST": str(url.host),
                "DATABASE_PORT": str(url.port),
                "DATABASE_USER": str(url.username),
                "DATABASE_SCHEMA": str(url.database),
                "MATRIX_HOMESERVER_URL": f"http://127.0.0.1:{hs_port}",
                "PORT": str(app_port),
                "SYNCBOT_PUBLIC_URL": f"http://127.0.0.1:{app_port}",
            }
            base = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
            app_log = tmp_path / "syncbot.log"
            command = compose["services"]["syncbot"]["command"]
            serve = subprocess.Popen(
                [sys.executable, "-m", "app.cli", *command[1:-2], "--host", "127.0.0.1"],
                cwd=tmp_path,
                env=base | env | {"PYTHONPATH": str(ROOT)},
                stdout=app_log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            procs.append(serve)
            assert _wait(f"http://127.0.0.1:{app_port}/health", serve, app_log) == 200
            metrics = f"http://127.0.0.1:{app_port}/metrics"
            assert _wait(metrics, serve, app_log) == 401
            bearer = {"Authorization": f"Bearer {dotenv['SYNCBOT_METRICS_TOKEN']}"}
            assert _wait(metrics, serve, app_log, headers=bearer) == 200
            started = app_log.read_text()
            assert "matrix on (appservice for localhost)" in started
            serve.terminate()
            serve.wait(30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
