"""``stacks/gcp.py`` over ``stacks/examples/gcp.yaml``: both stack kinds under mocks."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.contract import BOOTSTRAP_OUTPUTS, RUNTIME_ENV, Source
from stacks import gcp as gcp_stack
from stacks.config import parse_stack_config
from tests.infra.conftest import Edit, Recorded, evaluate_run
from tests.infra.gcp.gcp_mock_runtime import PROJECT_NUMBER, Run, run_gcp

EXAMPLE = Path(__file__).resolve().parents[3] / "stacks" / "examples" / "gcp.yaml"
PROJECT = "my-syncbot-project"
REGION = "europe-west1"
PREFIX = "syncbot-prod"


def _raw(**changes: Any) -> dict[str, Any]:
    raw = dict(yaml.safe_load(EXAMPLE.read_text())["config"])
    raw.update(changes)
    return raw


@pytest.fixture(scope="module")
def app_run() -> Run:
    config = parse_stack_config(_raw())
    return run_gcp(lambda: gcp_stack.build(config))


@pytest.fixture(scope="module")
def bootstrap_run() -> Run:
    config = parse_stack_config(_raw(**{"syncbot:kind": "bootstrap"}))
    return run_gcp(lambda: gcp_stack.build(config))


@pytest.mark.parametrize("kind", ["app_run", "bootstrap_run"])
def test_contract_outputs_under_contract_names(kind: str, request: pytest.FixtureRequest) -> None:
    run: Run = request.getfixturevalue(kind)
    assert set(BOOTSTRAP_OUTPUTS) <= set(run.outputs)
    assert run.outputs["deploy_role"] == f"syncbot-prod-deploy@{PROJECT}.iam.gserviceaccount.com"
    assert run.outputs["artifact_bucket"] == f"{PROJECT}-{PREFIX}-artifacts"
    assert run.outputs["region"] == REGION
    assert run.outputs["service_url"] == f"https://{PREFIX}-{PROJECT_NUMBER}.{REGION}.run.app"
    assert not run.secret_outputs


def test_bootstrap_kind_creates_only_bootstrap_resources(bootstrap_run: Run) -> None:
    types = {r.typ for r in bootstrap_run.resources}
    assert "gcp:cloudrunv2/service:Service" not in types
    assert "gcp:sql/databaseInstance:DatabaseInstance" not in types
    provider = bootstrap_run.named(f"{PREFIX}-deploy-provider").inputs
    assert provider["attributeCondition"] == (
        "assertion.repository == 'my-org/syncbot' && assertion.environment == 'production'"
    )
    pool = bootstrap_run.one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool").inputs
    # Named for the deployment: a dev and a prod bootstrap in one project do not collide.
    assert pool["workloadIdentityPoolId"] == f"{PREFIX}-gh"
    assert bootstrap_run.outputs["image_repository"] == (
        f"{REGION}-docker.pkg.dev/{PROJECT}/{PREFIX}"
    )


def test_app_kind_wires_the_example(app_run: Run) -> None:
    service = app_run.one("gcp:cloudrunv2/service:Service").inputs
    template = service["template"]
    assert service["name"] == PREFIX
    assert service["deletionProtection"] is True
    assert template["scaling"] == {"minInstanceCount": 1, "maxInstanceCount": 10}
    assert template["maxInstanceRequestConcurrency"] == 40
    assert template["timeout"] == "60s"
    (container,) = template["containers"]
    assert container["resources"]["limits"]["memory"] == "512Mi"
    assert container["image"].startswith(
        f"{REGION}-docker.pkg.dev/{PROJECT}/{PREFIX}/syncbot:prod@sha256:"
    )
    envs = {env["name"]: env for env in container["envs"]}
    settings = _raw()["syncbot:settings"]
    for var in RUNTIME_ENV:
        if var.name in settings:
            value = settings[var.name]
            value = str(value).lower() if isinstance(value, bool) else str(value)
            assert envs[var.name] == {"name": var.name, "value": value}
        if var.source is Source.SECRET and var.name in envs:
            assert set(envs[var.name]) == {"name", "valueSource"}
    for name in (
        "SLACK_SIGNING_SECRET",
        "SLACK_CLIENT_SECRET",
        "MATRIX_AS_TOKEN",
        "MATRIX_HS_TOKEN",
        "TOKEN_ENCRYPTION_KEY",
        "DATABASE_PASSWORD",
    ):
        assert "valueSource" in envs[name], name
    dumped = json.dumps(service)
    assert "placeholder" not in dumped  # secret config never reaches the service inputs


def test_app_kind_database_from_the_example(app_run: Run) -> None:
    instance = app_run.one("gcp:sql/databaseInstance:DatabaseInstance").inputs
    assert instance["databaseVersion"] == "POSTGRES_16"
    assert instance["settings"]["tier"] == "db-g1-small"
    backups = instance["settings"]["backupConfiguration"]
    assert backups["backupRetentionSettings"] == {"retainedBackups": 14}
    assert instance["deletionProtection"] is True


def test_app_secrets_from_stack_config_are_stored_as_secrets(app_run: Run) -> None:
    versions = app_run.of_type("gcp:secretmanager/secretVersion:SecretVersion")
    signing = next(
        v for v in versions if v.name == f"{PREFIX}-secrets-slack-signing-secret-version"
    )
    assert "secretData" in signing.secret_inputs
    assert signing.inputs["secretData"] == "v1:placeholder-signing-secret-ciphertext"


def test_existing_database_mode() -> None:
    raw = _raw(
        **{
            "syncbot:databaseMode": "existing",
            "syncbot:databaseUrl": {"secure": "v1:placeholder-url"},
            "syncbot:production": False,
        }
    )
    run = run_gcp(lambda: gcp_stack.build(parse_stack_config(raw)))
    assert not run.of_type("gcp:sql/databaseInstance:DatabaseInstance")
    (container,) = run.one("gcp:cloudrunv2/service:Service").inputs["template"]["containers"]
    envs = {env["name"] for env in container["envs"]}
    assert "DATABASE_URL" in envs and "DATABASE_HOST" not in envs


def test_a_non_gcp_config_is_refused() -> None:
    config = replace(parse_stack_config(_raw()), provider="aws", gcp=None)
    with pytest.raises(ValueError, match="gcp"):
        gcp_stack.build(config)


def _policy_findings(run: Run, edit: Edit | None = None) -> list[str]:
    return [f"{v.policy}: {v.message}" for v in evaluate_run(run, edit)]


@pytest.mark.parametrize("kind", ["app_run", "bootstrap_run"])
def test_policy_pack_passes_both_kinds(kind: str, request: pytest.FixtureRequest) -> None:
    assert _policy_findings(request.getfixturevalue(kind)) == []


def test_policy_pack_sees_these_resources(app_run: Run) -> None:
    # Negative control: the same recording with an open database must be caught.
    def open_database(r: Recorded, props: Mapping[str, Any]) -> Mapping[str, Any]:
        if r.typ != "gcp:sql/databaseInstance:DatabaseInstance":
            return props
        props = copy.deepcopy(dict(props))
        props["settings"]["ipConfiguration"]["ipv4Enabled"] = True
        props["settings"]["ipConfiguration"]["authorizedNetworks"] = [{"value": "0.0.0.0/0"}]
        return props

    findings = _policy_findings(app_run, open_database)
    assert any(f.startswith("syncbot-gcp-sql-no-open-networks") for f in findings)


def test_app_kind_exports_its_delivery_queue(app_run: Run) -> None:
    assert app_run.outputs["delivery_queue"] == (
        f"projects/{PROJECT}/locations/{REGION}/queues/{PREFIX}-deliveries"
    )
