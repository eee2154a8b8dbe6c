"""Running the real stack program on a stack file under the recording mocks, and the policy
pack over what it recorded."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from policies.evaluate import Resource, Violation, evaluate
from stacks.program import main
from tests.infra.conftest import (
    PROJECT,
    STACK,
    MockRun,
    Recorded,
    engine_config,
    run_program,
)

ROOT = Path(__file__).resolve().parents[3]
# Distinctive secret values: the tests assert they never appear outside secret inputs.
SIGNING_SECRET = "sekrit-signing-7f3a9c"
CLIENT_SECRET = "sekrit-client-b41e02"


def stack_file_config(name: str) -> dict[str, Any]:
    """The ``config:`` block of a stack file in the repository."""
    return dict(yaml.safe_load((ROOT / name).read_text())["config"])


def fake_bundle(directory: Path) -> Path:
    """A tiny stand-in for the Lambda zip (the program only hashes and uploads it)."""
    path = directory / "bundle.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app/__init__.py", "")
    return path


def run_stack(stack_config: dict[str, Any], *, bundle: Path | None = None) -> MockRun:
    """Runs ``stacks.program.main`` with a stack file's config."""
    config, secret_keys = engine_config(stack_config)
    if bundle is not None:
        config["syncbot:awsBundlePath"] = str(bundle)
    return run_program(main, config=config, secret_keys=secret_keys)


def with_dev_secrets(stack_config: dict[str, Any]) -> dict[str, Any]:
    """``Pulumi.dev.yaml`` plus the secrets its header tells the operator to set."""
    return {
        **stack_config,
        "syncbot:slackSigningSecret": {"secure": SIGNING_SECRET},
        "syncbot:slackClientSecret": {"secure": CLIENT_SECRET},
    }


STACK_URN = f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{STACK}"

Edit = Callable[[Recorded, Mapping[str, Any]], Mapping[str, Any]]
"""Changes one resource's inputs or outputs before the pack sees them (a negative control)."""


def _unchanged(resource: Recorded, props: Mapping[str, Any]) -> Mapping[str, Any]:
    return props


def patch_type(typ: str, **patch: Any) -> Edit:
    """An edit that sets ``patch`` on every resource of type ``typ``."""
    return lambda r, props: {**props, **patch} if r.typ == typ else props


def evaluate_run(run: MockRun, edit: Edit = _unchanged) -> list[Violation]:
    """The policy pack's findings on a run, each resource edited first by ``edit``."""
    resources = [
        Resource(
            r.typ,
            r.name,
            r.urn,
            edit(r, r.inputs),
            {**edit(r, r.outputs), "id": r.id},
            r.parent,
            r.dependencies,
        )
        for r in run.resources
    ]
    return evaluate(resources, stack_urn=STACK_URN, stack_outputs=run.outputs)


def policy_of(inputs: dict[str, Any], key: str = "policy") -> dict[str, Any]:
    """A JSON policy input, parsed."""
    return json.loads(inputs[key])
