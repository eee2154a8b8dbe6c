"""The offline plan and the mocks -> policy bridge, on the shipped stack files.

Each stack file's program runs once per module under the mock runtime; weakened variants are
built by patching the recorded resources (the rules run again over them in milliseconds), so
the expected findings are exact: the weakening alone, nothing else.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies.evaluate import Resource, Violation, evaluate
from stacks import plan as planner
from stacks.mock_cloud import lambda_bundle

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {
    "dev": ROOT / "Pulumi.dev.yaml",
    "aws": ROOT / "stacks" / "examples" / "aws.yaml",
    "gcp": ROOT / "stacks" / "examples" / "gcp.yaml",
}


def stack_file(tmp: Path, source: Path, **overrides: Any) -> Path:
    """A copy of a stack file with config overrides, keeping the ``Pulumi.<stack>`` name."""
    document = yaml.safe_load(source.read_text())
    config = document["config"]
    if config.get("syncbot:provider") == "aws" and config.get("syncbot:kind", "app") == "app":
        # The AWS program hashes the Lambda bundle (and checks its RDS CAs); the plan never
        # uploads it, so a stand-in zip will do.
        bundle = lambda_bundle(tmp / "bundle.zip")
        config["syncbot:awsBundlePath"] = str(bundle)
    config.update(overrides)
    target = tmp / source.name
    target.write_text(yaml.safe_dump(document))
    return target


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, planner.Plan]:
    tmp = tmp_path_factory.mktemp("plans")
    found: dict[str, planner.Plan] = {}
    for key, source in EXAMPLES.items():
        (tmp / key).mkdir()
        found[key] = planner.plan(stack_file(tmp / key, source))
    github = {"syncbot:githubRepository": "my-org/syncbot", "syncbot:githubEnvironment": "prod"}
    for key, source in (("aws-bootstrap", EXAMPLES["aws"]), ("gcp-bootstrap", EXAMPLES["gcp"])):
        (tmp / key).mkdir()
        path = stack_file(tmp / key, source, **{"syncbot:kind": "bootstrap", **github})
        found[key] = planner.plan(path)
    return found


def mandatory(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.mandatory]


def findings(result: planner.Plan, resources: list[Resource]) -> list[tuple[str, str | None]]:
    names = {r.urn: r.name for r in resources}
    violations = evaluate(resources, stack_urn=result.stack_urn, stack_outputs=result.outputs)
    return [(v.policy, names.get(v.resource or "")) for v in mandatory(violations)]


def patched(
    result: planner.Plan, resource_type: str, change: Callable[[dict[str, Any]], None]
) -> tuple[list[Resource], str]:
    """The recorded resources with ``change`` applied to the inputs of the app's resource of
    ``resource_type`` (the first one carrying contract env when there are several)."""
    resources = list(result.policy_resources)
    candidates = [r for r in resources if r.resource_type == resource_type]
    assert candidates, f"no {resource_type} in the plan"
    target = next(
        (r for r in candidates if "SLACK_CLIENT_ID" in json.dumps(r.inputs)), candidates[0]
    )
    inputs = copy.deepcopy(dict(target.inputs))
    change(inputs)
    swapped = replace(target, inputs=inputs)
    return [swapped if r is target else r for r in resources], target.name


@pytest.mark.parametrize("key", [*EXAMPLES, "aws-bootstrap", "gcp-bootstrap"])
def test_shipped_stacks_have_no_mandatory_violation(plans: dict, key: str) -> None:
    result = plans[key]
    assert result.resources
    assert mandatory(list(result.violations)) == []


@pytest.mark.parametrize("key", [*EXAMPLES, "aws-bootstrap", "gcp-bootstrap"])
def test_unpatched_resources_evaluate_clean(plans: dict, key: str) -> None:
    # The patching below starts from a clean baseline, so its findings are the weakening alone.
    assert findings(plans[key], list(plans[key].policy_resources)) == []


def test_public_aws_database_is_exactly_one_violation(plans: dict) -> None:
    def make_public(inputs: dict[str, Any]) -> None:
        inputs["publiclyAccessible"] = True

    resources, name = patched(plans["aws"], "aws:rds/instance:Instance", make_public)
    assert findings(plans["aws"], resources) == [("syncbot-aws-rds-no-public-access", name)]


def test_open_cloud_sql_is_exactly_one_violation(plans: dict) -> None:
    def open_to_internet(inputs: dict[str, Any]) -> None:
        ip = inputs["settings"]["ipConfiguration"]
        ip["ipv4Enabled"] = True
        ip["authorizedNetworks"] = [{"name": "anywhere", "value": "0.0.0.0/0"}]

    typ = "gcp:sql/databaseInstance:DatabaseInstance"
    resources, name = patched(plans["gcp"], typ, open_to_internet)
    assert findings(plans["gcp"], resources) == [("syncbot-gcp-sql-no-open-networks", name)]


def test_wildcard_oidc_subject_is_exactly_one_violation(plans: dict) -> None:
    result = plans["aws-bootstrap"]
    roles = [
        r
        for r in result.policy_resources
        if r.resource_type == "aws:iam/role:Role"
        and r.name.endswith("-deploy-role")
        and "token.actions.githubusercontent.com" in json.dumps(r.inputs)
    ]
    assert len(roles) == 1

    def widen(inputs: dict[str, Any]) -> None:
        text = inputs["assumeRolePolicy"]
        document = json.loads(text) if isinstance(text, str) else text
        for statement in document["Statement"]:
            for clauses in statement.get("Condition", {}).values():
                for key in clauses:
                    if key.endswith(":sub"):
                        clauses[key] = "repo:my-org/syncbot:*"
        inputs["assumeRolePolicy"] = json.dumps(document)

    inputs = copy.deepcopy(dict(roles[0].inputs))
    widen(inputs)
    resources = [
        replace(r, inputs=inputs) if r is roles[0] else r for r in result.policy_resources
    ]
    assert findings(result, resources) == [("syncbot-aws-iam-oidc-trust-pinned", roles[0].name)]


def test_unpinned_workload_identity_provider_is_exactly_one_violation(plans: dict) -> None:
    def unpin(inputs: dict[str, Any]) -> None:
        inputs.pop("attributeCondition", None)

    typ = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
    resources, name = patched(plans["gcp-bootstrap"], typ, unpin)
    assert findings(plans["gcp-bootstrap"], resources) == [
        ("syncbot-gcp-wif-attribute-condition", name)
    ]


def test_plaintext_secret_in_lambda_is_exactly_one_violation(plans: dict) -> None:
    def leak(inputs: dict[str, Any]) -> None:
        inputs["environment"]["variables"]["TOKEN_ENCRYPTION_KEY"] = "k" * 48

    resources, name = patched(plans["aws"], "aws:lambda/function:Function", leak)
    assert findings(plans["aws"], resources) == [("syncbot-aws-lambda-no-plaintext-secrets", name)]


def test_plaintext_secret_in_cloud_run_is_exactly_one_violation(plans: dict) -> None:
    def leak(inputs: dict[str, Any]) -> None:
        for env in inputs["template"]["containers"][0]["envs"]:
            if env["name"] == "SLACK_SIGNING_SECRET":
                env.pop("valueSource")
                env["value"] = "plaintext-signing-secret"

    resources, name = patched(plans["gcp"], "gcp:cloudrunv2/service:Service", leak)
    assert findings(plans["gcp"], resources) == [
        ("syncbot-gcp-cloudrun-secrets-by-reference", name)
    ]


def test_missing_route_is_reported(plans: dict) -> None:
    result = plans["aws"]
    resources = [
        r
        for r in result.policy_resources
        if not (
            r.resource_type == "aws:apigatewayv2/route:Route"
            and r.inputs.get("routeKey") == "GET /health"
        )
    ]
    assert findings(result, resources) == [("syncbot-stack-routes-wired", None)]


def test_json_document_has_the_promised_shape_and_masks_secrets(plans: dict) -> None:
    for key in EXAMPLES:
        document = json.loads(json.dumps(planner.to_json(plans[key])))
        assert set(document) == {"resources", "outputs", "violations"}
        for resource in document["resources"]:
            assert set(resource) == {"type", "name", "parent", "inputs"}
        names = {r["name"] for r in document["resources"]}
        assert all(r["parent"] is None or r["parent"] in names for r in document["resources"])
        for violation in document["violations"]:
            assert set(violation) == {"policy", "enforcement", "resource", "message"}
        text = json.dumps(document)
        assert "offline-plan-" not in text  # no placeholder secret leaks
        assert "v1:" not in text  # nor any ciphertext from the file
    assert planner.MASK in json.dumps(planner.to_json(plans["aws"]))


def test_cli_prints_the_tree_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = stack_file(tmp_path, EXAMPLES["aws"])
    assert planner.main([str(path)]) == planner.EXIT_OK
    text = capsys.readouterr().out
    assert "syncbot:aws:App" in text and "└─ " in text
    assert "Policies: 0 mandatory" in text
    assert planner.main([str(path), "--json"]) == planner.EXIT_OK
    document = json.loads(capsys.readouterr().out)
    assert {"service_url", "region", "artifact_bucket"} <= set(document["outputs"])


PUBLIC_DB_PROGRAM = """
import pulumi
import pulumi_aws as aws
aws.rds.Instance("db", instance_class="db.t4g.micro", engine="postgres",
                 publicly_accessible=True, storage_encrypted=True, backup_retention_period=7)
for key in ("deploy_role", "artifact_bucket", "region"):
    pulumi.export(key, key)
"""


def test_cli_exits_non_zero_on_mandatory_violation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    program = tmp_path / "__main__.py"
    program.write_text(PUBLIC_DB_PROGRAM)
    monkeypatch.setattr(planner, "PROGRAM", program)
    path = stack_file(tmp_path, EXAMPLES["dev"])
    assert planner.main([str(path), "--json"]) == planner.EXIT_VIOLATION
    document = json.loads(capsys.readouterr().out)
    assert [v["policy"] for v in document["violations"]] == ["syncbot-aws-rds-no-public-access"]
    # The same finding turned advisory by pack config no longer blocks.
    config = tmp_path / "policy.json"
    config.write_text(json.dumps({"syncbot-aws-rds-no-public-access": "advisory"}))
    assert planner.main([str(path), "--policy-config", str(config)]) == planner.EXIT_OK
    assert "[advisory] syncbot-aws-rds-no-public-access" in capsys.readouterr().out


def test_cli_exits_2_on_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = stack_file(tmp_path, EXAMPLES["aws"], **{"syncbot:provider": "azure"})
    assert planner.main([str(path)]) == planner.EXIT_CONFIG
    assert "syncbot:provider: unknown value 'azure'" in capsys.readouterr().err
    # Problems only the program can see (here: no Lambda bundle) are config errors too.
    no_bundle = stack_file(tmp_path, EXAMPLES["dev"])
    document = yaml.safe_load(no_bundle.read_text())
    document["config"]["syncbot:awsBundlePath"] = str(tmp_path / "absent.zip")
    no_bundle.write_text(yaml.safe_dump(document))
    assert planner.main([str(no_bundle)]) == planner.EXIT_CONFIG
    assert "absent.zip does not exist" in capsys.readouterr().err
    missing = tmp_path / "missing.yaml"
    assert planner.main([str(missing)]) == planner.EXIT_CONFIG
    no_config = tmp_path / "Pulumi.empty.yaml"
    no_config.write_text("encryptionsalt: x\n")
    assert planner.main([str(no_config)]) == planner.EXIT_CONFIG
    assert "no 'config:' mapping" in capsys.readouterr().err


def test_production_comes_from_stack_config() -> None:
    # The dev stack is not production, the AWS example is: deletion protection is demanded
    # only there (its RDS instance has it on).
    from pulumi.runtime import set_all_config

    from policies.aws import rds
    from tests.policies.sdk import check_resource

    props = {"storageEncrypted": True, "backupRetentionPeriod": 7, "deletionProtection": False}
    try:
        set_all_config({"syncbot:production": "true"}, [])
        assert check_resource(rds.deletion_protection, rds.INSTANCE, props, stack="eu") != []
        set_all_config({"syncbot:production": "false"}, [])
        assert check_resource(rds.deletion_protection, rds.INSTANCE, props, stack="eu") == []
    finally:
        set_all_config({}, [])


# Rules a first preview cannot run, because what they read is computed by the cloud. Known and
# listed (docs/policies-and-ci.md): the function's and the scheduler's inline policies are built
# from generated ARNs, and which secrets the function reads is one computed JSON value. GCP
# stacks and both bootstraps (trust policies, deploy grants, WIF conditions) are judged whole.
# `up` runs them on known values; a rule that newly goes blind fails this test.
KNOWN_BLIND = {
    "aws": {
        ("syncbot-aws-iam-no-wildcard-admin", "svc-policy"),
        ("syncbot-aws-iam-no-wildcard-actions", "svc-policy"),
        ("syncbot-aws-iam-sqs-scoped", "svc-policy"),
        ("syncbot-aws-iam-no-wildcard-admin", "sched-invoke"),
        ("syncbot-aws-iam-no-wildcard-actions", "sched-invoke"),
        ("syncbot-aws-iam-sqs-scoped", "sched-invoke"),
        ("syncbot-stack-bootstrap-outputs", None),
        ("syncbot-stack-routes-wired", None),
        ("syncbot-stack-variables-wired", None),
    },
}


@pytest.fixture(scope="module")
def previews(tmp_path_factory: pytest.TempPathFactory) -> dict[str, planner.Plan]:
    tmp = tmp_path_factory.mktemp("previews")
    found: dict[str, planner.Plan] = {}
    for key in ("aws", "gcp"):
        (tmp / key).mkdir()
        found[key] = planner.plan(stack_file(tmp / key, EXAMPLES[key]), preview=True)
    github = {"syncbot:githubRepository": "my-org/syncbot", "syncbot:githubEnvironment": "prod"}
    for key, source in (("aws-bootstrap", EXAMPLES["aws"]), ("gcp-bootstrap", EXAMPLES["gcp"])):
        (tmp / key).mkdir()
        path = stack_file(tmp / key, source, **{"syncbot:kind": "bootstrap", **github})
        found[key] = planner.plan(path, preview=True)
    return found


@pytest.mark.parametrize("key", ["aws", "gcp", "aws-bootstrap", "gcp-bootstrap"])
def test_a_first_preview_keeps_every_rule_judging_but_the_known_few(
    previews: dict, key: str
) -> None:
    result = previews[key]
    assert result.preview
    # Provider outputs really are unknown in this mode (the mock does not invent them).
    assert any(r.id == "" for r in result.resources if r.custom)
    assert mandatory(list(result.violations)) == []
    names = {r.urn: r.name for r in result.resources}
    blind = {
        (
            v.policy,
            None
            if v.resource is None or v.resource == result.stack_urn
            else names.get(v.resource, "").split("-app-")[-1],
        )
        for v in result.blind
    }
    assert blind == KNOWN_BLIND.get(key, set())


def test_blind_rules_are_advisory_in_the_preview_as_the_analyzer_makes_them(
    previews: dict,
) -> None:
    assert previews["aws"].blind and all(not v.mandatory for v in previews["aws"].blind)
    assert "blind (unknown until up)" in planner.render_text(previews["aws"])
