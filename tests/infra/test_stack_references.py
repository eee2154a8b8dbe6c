"""App stacks read the bootstrap stack's outputs by stack reference instead of copies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pulumi
import pytest

from tests.infra.aws.aws_stack_fixtures import fake_bundle, run_stack, stack_file_config
from tests.infra.conftest import ACCOUNT_ID

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def _clear_config() -> Iterator[None]:
    # The runs install stack config process-wide (production ones among them).
    yield
    pulumi.runtime.set_all_config({}, [])


def test_the_aws_app_uploads_to_the_bootstrap_stacks_bucket(tmp_path: Path) -> None:
    config = stack_file_config("stacks/examples/aws.yaml")
    del config["syncbot:awsArtifactBucket"]
    config["syncbot:bootstrapStack"] = "my-org/syncbot/prod-bootstrap"
    run = run_stack(config, bundle=fake_bundle(tmp_path))
    (reference,) = run.of_type("pulumi:pulumi:StackReference")
    assert reference.inputs["name"] == "my-org/syncbot/prod-bootstrap"
    bucket = reference.outputs["outputs"]["artifact_bucket"]
    assert bucket == f"prod-bootstrap-artifacts-{ACCOUNT_ID}-eu-central-1"
    assert run.one("aws:s3/bucketObjectv2:BucketObjectv2").inputs["bucket"] == bucket
    assert run.outputs["artifact_bucket"] == bucket


def test_the_gcp_app_pulls_from_the_bootstrap_stacks_repository() -> None:
    config = stack_file_config("stacks/examples/gcp.yaml")
    config["syncbot:bootstrapStack"] = "prod-bootstrap"
    run = run_stack(config)
    (reference,) = run.of_type("pulumi:pulumi:StackReference")
    repository = reference.outputs["outputs"]["image_repository"]
    image = run.one("docker-build:index:Image").inputs
    assert image["tags"][0].startswith(f"{repository}/")


def test_a_malformed_reference_is_a_config_error() -> None:
    from stacks.config import StackConfigError, parse_stack_config

    raw = {
        "syncbot:provider": "gcp",
        "syncbot:kind": "bootstrap",
        "syncbot:environment": "prod",
        "syncbot:githubRepository": "o/r",
        "syncbot:githubRef": "refs/heads/main",
        "gcp:project": "p",
        "gcp:region": "europe-west1",
        "syncbot:bootstrapStack": "a/b/c/d",
    }
    with pytest.raises(StackConfigError, match="syncbot:bootstrapStack"):
        parse_stack_config(raw)
