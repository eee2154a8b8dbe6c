"""Running the real stack program on a stack file under the recording mocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from stacks.mock_cloud import lambda_bundle
from stacks.program import main
from tests.infra.conftest import MockRun, engine_config, run_program

ROOT = Path(__file__).resolve().parents[3]
# Distinctive secret values: the tests assert they never appear outside secret inputs.
SIGNING_SECRET = "sekrit-signing-7f3a9c"
CLIENT_SECRET = "sekrit-client-b41e02"


def stack_file_config(name: str) -> dict[str, Any]:
    """The ``config:`` block of a stack file in the repository."""
    return dict(yaml.safe_load((ROOT / name).read_text())["config"])


def fake_bundle(directory: Path) -> Path:
    """A tiny stand-in for the Lambda zip (the program only hashes and uploads it)."""
    return lambda_bundle(directory / "bundle.zip")


def run_stack(
    stack_config: dict[str, Any], *, bundle: Path | None = None, preview: bool = False
) -> MockRun:
    """Runs ``stacks.program.main`` with a stack file's config (as ``up``, or as a first
    ``preview`` where provider outputs are unknown)."""
    config, secret_keys = engine_config(stack_config)
    if bundle is not None:
        config["syncbot:awsBundlePath"] = str(bundle)
    return run_program(main, config=config, secret_keys=secret_keys, preview=preview)


def with_dev_secrets(stack_config: dict[str, Any]) -> dict[str, Any]:
    """``Pulumi.dev.yaml`` plus the secrets its header tells the operator to set."""
    return {
        **stack_config,
        "syncbot:slackSigningSecret": {"secure": SIGNING_SECRET},
        "syncbot:slackClientSecret": {"secure": CLIENT_SECRET},
    }


def policy_of(inputs: dict[str, Any], key: str = "policy") -> dict[str, Any]:
    """A JSON policy input, parsed."""
    return json.loads(inputs[key])
