"""Stack runs shared by the AWS test modules (each program run costs seconds; run it once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.aws.aws_stack_fixtures import (
    fake_bundle,
    run_stack,
    stack_file_config,
    with_dev_secrets,
)
from tests.infra.conftest import MockRun

BOOTSTRAP = {
    "aws:region": "eu-west-1",
    "syncbot:provider": "aws",
    "syncbot:kind": "bootstrap",
    "syncbot:environment": "prod",
    "syncbot:production": True,
    "syncbot:githubRepository": "example/syncbot",
    "syncbot:githubEnvironment": "production",
}


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="session")
def dev(bundle: Path) -> MockRun:
    """``Pulumi.dev.yaml`` plus its two Slack secrets."""
    return run_stack(with_dev_secrets(stack_file_config("Pulumi.dev.yaml")), bundle=bundle)


@pytest.fixture(scope="session")
def prod(bundle: Path) -> MockRun:
    """``stacks/examples/aws.yaml``."""
    return run_stack(stack_file_config("stacks/examples/aws.yaml"), bundle=bundle)


@pytest.fixture(params=["dev", "prod"])
def app_stack(request: pytest.FixtureRequest) -> MockRun:
    """Each app stack in turn: ``dev``, then ``prod`` (the test runs once per stack)."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def bootstrap() -> MockRun:
    """A production bootstrap stack trusting one repository's ``production`` environment."""
    return run_stack(dict(BOOTSTRAP))
