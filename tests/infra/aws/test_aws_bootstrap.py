"""The AWS bootstrap stack under mocks: OIDC trust, deploy policy, artifact store, outputs."""

from __future__ import annotations

import json

import pytest

from infra.aws.deploy_policy import LOG_DELIVERY_ACTIONS, deploy_policy
from infra.aws.iam import github_trust_policy
from infra.contract import BOOTSTRAP_OUTPUTS
from policies.aws.permissions import writes
from tests.infra.aws.aws_stack_fixtures import policy_of, run_stack
from tests.infra.aws.conftest import BOOTSTRAP
from tests.infra.conftest import ACCOUNT_ID, MockRun, evaluate_run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EXISTING_PROVIDER = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
PINNED_SUBJECT = "repo:example/syncbot:environment:production"


@pytest.fixture(scope="module")
def reused() -> MockRun:
    config = {k: v for k, v in BOOTSTRAP.items() if k != "syncbot:githubEnvironment"}
    return run_stack(
        {
            **config,
            "syncbot:environment": "dev",
            "syncbot:production": False,
            "syncbot:githubRef": "refs/heads/main",
            "syncbot:awsOidcProviderArn": EXISTING_PROVIDER,
        }
    )


def _deploy_role(run: MockRun) -> dict:
    (role,) = [r for r in run.of_type("aws:iam/role:Role") if r.name.endswith("-deploy-role")]
    return role.inputs


def test_components_and_parenting(bootstrap: MockRun) -> None:
    types = {r.typ for r in bootstrap.resources}
    assert {
        "syncbot:aws:Bootstrap",
        "syncbot:aws:ArtifactStore",
        "syncbot:aws:DeployRole",
    } <= types
    assert not {"aws:lambda/function:Function", "aws:rds/instance:Instance"} & types
    for resource in bootstrap.resources:
        if resource.typ in ("pulumi:providers:aws", "syncbot:aws:Bootstrap"):
            continue
        assert resource.parent_name and resource.name.startswith(resource.parent_name)


def test_oidc_provider_is_created_for_github_with_the_sts_audience(bootstrap: MockRun) -> None:
    provider = bootstrap.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs
    assert provider["url"] == "https://token.actions.githubusercontent.com"
    assert provider["clientIdLists"] == ["sts.amazonaws.com"]


def test_trust_is_pinned_to_one_repository_and_environment(bootstrap: MockRun) -> None:
    (statement,) = policy_of(_deploy_role(bootstrap), "assumeRolePolicy")["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"] == EXISTING_PROVIDER
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": PINNED_SUBJECT,
        }
    }


def test_an_existing_provider_is_reused_and_trust_pinned_to_a_branch(reused: MockRun) -> None:
    assert not reused.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    (statement,) = policy_of(_deploy_role(reused), "assumeRolePolicy")["Statement"]
    assert statement["Principal"]["Federated"] == EXISTING_PROVIDER
    assert (
        statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        == "repo:example/syncbot:ref:refs/heads/main"
    )


def test_wildcard_subjects_are_refused() -> None:
    with pytest.raises(ValueError, match="exact"):
        github_trust_policy(EXISTING_PROVIDER, "repo:example/syncbot:*")


def test_deploy_policy_is_scoped_to_the_app_stack(bootstrap: MockRun) -> None:
    (policy,) = [
        r
        for r in bootstrap.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.name.endswith("-deploy-policy")
    ]
    statements = policy_of(policy.inputs)["Statement"]
    actions = {a for s in statements for a in s["Action"]}
    assert "*" not in actions and not any(a.endswith(":*") for a in actions)
    for needed in (
        "scheduler:CreateSchedule",
        "lambda:InvokeFunction",
        "lambda:TagResource",
        "lambda:UpdateFunctionCode",
        "iam:PassRole",
        "rds:CreateDBInstance",
        "secretsmanager:CreateSecret",
        "s3:PutObject",
        "apigateway:POST",
    ):
        assert needed in actions, needed
    by_action = {a: s for s in statements for a in s["Action"]}
    assert by_action["lambda:CreateFunction"]["Resource"] == [
        f"arn:aws:lambda:eu-west-1:{ACCOUNT_ID}:function:syncbot-prod-app-*"
    ]
    assert by_action["iam:PassRole"]["Condition"]["StringEquals"]["iam:PassedToService"]
    # The deploy role can never edit itself: its name is outside the app prefix.
    assert (
        not _deploy_role(bootstrap)
        .get("name", "syncbot-prod-deploy-role")
        .startswith("syncbot-prod-app-")
    )
    for statement in statements:
        if statement["Resource"] == ["*"]:
            read_only = all(
                a.split(":")[1].startswith(("Describe", "List", "Get"))
                for a in statement["Action"]
            )
            delivery = set(statement["Action"]) <= set(LOG_DELIVERY_ACTIONS)
            assert read_only or delivery or "Condition" in statement, statement


def test_deploy_policy_document_is_pure_data() -> None:
    document = deploy_policy(
        partition="aws",
        region="us-east-1",
        account_id=ACCOUNT_ID,
        prefix="syncbot-x-app",
        artifact_bucket_arn="arn:aws:s3:::b",
    )
    text = json.dumps(document)
    assert "syncbot-x-app-*" in text and "arn:aws:s3:::b/*" in text


def test_artifact_store_is_private_versioned_encrypted_and_expires(bootstrap: MockRun) -> None:
    bootstrap.one("aws:s3/bucket:Bucket")
    block = bootstrap.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    versioning = bootstrap.one("aws:s3/bucketVersioning:BucketVersioning").inputs
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    encryption = bootstrap.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    assert encryption["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
    rules = bootstrap.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    ).inputs["rules"]
    assert any(r.get("expiration", {}).get("days") for r in rules)
    assert any(r.get("noncurrentVersionExpiration", {}).get("noncurrentDays") for r in rules)
    statement = policy_of(bootstrap.one("aws:s3/bucketPolicy:BucketPolicy").inputs)["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_bootstrap_exports_the_contract_outputs(bootstrap: MockRun) -> None:
    assert set(BOOTSTRAP_OUTPUTS) <= set(bootstrap.outputs)
    assert bootstrap.outputs["deploy_role"].startswith(f"arn:aws:iam::{ACCOUNT_ID}:role/")
    # A fixed name, known at preview: the deploy policy naming it is judged on the PR.
    assert bootstrap.outputs["artifact_bucket"] == f"syncbot-prod-artifacts-{ACCOUNT_ID}-eu-west-1"
    assert bootstrap.outputs["region"] == "eu-west-1"
    assert not bootstrap.secret_outputs


def test_pull_requests_preview_through_their_own_read_only_role(bootstrap: MockRun) -> None:
    # A preview job has no environment: its subject is `repo:O/R:pull_request`, which the
    # deploy role does not trust; a role of its own can read and change nothing.
    (role,) = [
        r for r in bootstrap.of_type("aws:iam/role:Role") if r.name.endswith("-preview-role")
    ]
    (statement,) = policy_of(role.inputs, "assumeRolePolicy")["Statement"]
    assert statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == (
        "repo:example/syncbot:pull_request"
    )
    deploy_trust = json.dumps(policy_of(_deploy_role(bootstrap), "assumeRolePolicy"))
    assert "pull_request" not in deploy_trust
    (preview_policy,) = [
        r
        for r in bootstrap.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.name.endswith("-preview-policy")
    ]
    statements = policy_of(preview_policy.inputs)["Statement"]
    assert [w for s in statements for w in writes(s)] == []
    assert bootstrap.outputs["preview_role"] == role.outputs["arn"]


def test_the_trust_policy_is_known_at_preview() -> None:
    # Built from the account id (an invoke, answered in a preview), not from the provider's
    # ARN output, so the OIDC pinning rule judges it on the pull request.
    run = run_stack(dict(BOOTSTRAP), preview=True)
    role = next(r for r in run.of_type("aws:iam/role:Role") if r.name.endswith("-deploy-role"))
    trust = policy_of(role.inputs, "assumeRolePolicy")
    assert trust["Statement"][0]["Principal"]["Federated"] == (
        f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"
    )
    assert [v for v in evaluate_run(run) if v.blind] == []
