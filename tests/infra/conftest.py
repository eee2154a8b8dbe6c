"""The infra tests' view of the shared mock cloud (:mod:`stacks.mock_cloud`).

The offline plan and these tests run programs under the same mocks, with the same
provider-computed outputs; this module only adapts it to pytest: a run per call with the test
stack's names, config given as a mapping, and the policy pack over a run.

Mocks are process-global in Pulumi, so run one program per module-scoped fixture and assert on
the returned :class:`MockRun`; never install mocks at import time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pulumi
import pytest

from policies.evaluate import Resource, Violation, evaluate
from stacks import mock_cloud
from stacks.mock_cloud import ACCOUNT_ID, CallFn, OutputsFn, Registration, Run

__all__ = ["ACCOUNT_ID", "REGION", "MockRun", "Recorded", "evaluate_run", "run_program"]

REGION = mock_cloud.DEFAULT_AWS_REGION
PROJECT = "syncbot"
STACK = "test"
STACK_URN = f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{STACK}"

MockRun = Run
Recorded = Registration

Edit = Callable[[Recorded, Mapping[str, Any]], Mapping[str, Any]]
"""Changes one resource's inputs or outputs before the pack sees them (a negative control)."""


def patch_type(typ: str, **patch: Any) -> Edit:
    """An edit that sets ``patch`` on every resource of type ``typ``."""
    return lambda r, props: {**props, **patch} if r.typ == typ else props


def evaluate_run(
    run: MockRun, edit: Edit | None = None, *, unprotect: bool = False
) -> list[Violation]:
    """The policy pack's findings on a run as the offline plan presents it (inputs to resource
    rules, outputs, parents and dependencies to stack rules), each resource edited first.

    ``unprotect`` drops every ``protect`` option, as if the program had forgotten them.
    """
    change = edit or (lambda r, props: props)
    resources = [
        Resource(
            r.typ,
            r.name,
            r.urn,
            change(r, r.inputs),
            {**change(r, r.outputs), "id": r.id},
            r.parent,
            r.dependencies,
            protect=r.protect and not unprotect,
            retain_on_delete=r.retain_on_delete,
        )
        for r in run.resources
    ]
    return evaluate(resources, stack_urn=run.stack_urn, stack_outputs=run.outputs)


def run_program(
    program: Callable[[], Mapping[str, Any] | None],
    *,
    config: Mapping[str, Any] | None = None,
    secret_keys: frozenset[str] | set[str] = frozenset(),
    outputs: OutputsFn | None = None,
    call: CallFn | None = None,
    project: str = PROJECT,
    stack: str = STACK,
    preview: bool = False,
) -> MockRun:
    """Runs a program under the shared mock cloud.

    Args:
        program: Declares resources; may ``pulumi.export`` and/or return a mapping of outputs.
        config: Full-key stack config (``"syncbot:provider": "aws"``); non-strings become JSON,
            as the engine delivers structured config.
        secret_keys: Keys of ``config`` the engine would report as secret.
        outputs: Extra computed outputs per resource (a test's override).
        call: Answers for provider functions, tried before the shared ones.
        project: The Pulumi project name.
        stack: The stack name.
        preview: Run as a first ``pulumi preview`` (provider-computed outputs unknown).

    Returns:
        The recorded resources and the resolved stack outputs (exports plus returned mapping).
    """
    engine = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()}
    return mock_cloud.run(
        program,
        project=project,
        stack=stack,
        config=engine,
        secret_keys=secret_keys,
        preview=preview,
        outputs=outputs,
        call=call,
    )


@pytest.fixture
def mock_runner() -> Iterator[Callable[..., MockRun]]:
    """:func:`run_program`, with the global config cleared afterwards."""
    yield run_program
    pulumi.runtime.set_all_config({}, [])


def engine_config(stack_config: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Turns a stack file's ``config:`` block into what the engine hands a program.

    ``{"secure": ciphertext}`` values become plain strings flagged secret (the engine would
    decrypt them; the ciphertext stands in for the value).

    Args:
        stack_config: The ``config:`` mapping of a ``Pulumi.<stack>.yaml``.

    Returns:
        The config for :func:`run_program` and its secret keys.
    """
    config: dict[str, Any] = {}
    secret_keys: set[str] = set()
    for key, value in stack_config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[key] = value["secure"]
            secret_keys.add(key)
        else:
            config[key] = value
    return config, secret_keys
