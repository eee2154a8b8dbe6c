"""Seeded violations through the whole pack, as the offline plan and the analyzer run it.

Each case plants one mistake of a class the pack must stop, among clean neighbours, and expects
exactly that rule to fire, at the mandatory level, on exactly that resource.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from pulumi.runtime import set_all_config

from policies.evaluate import Resource, Violation, evaluate

STACK = "prod"
STACK_URN = f"urn:pulumi:{STACK}::syncbot::pulumi:pulumi:Stack::syncbot-{STACK}"
DEPLOYER = "serviceAccount:deploy@p.iam.gserviceaccount.com"
CONFINED = (
    'resource.type == "cloudresourcemanager.googleapis.com/Project" || '
    'resource.name.startsWith("projects/p/locations/r/services/syncbot-prod")'
)


def resource(typ: str, name: str, props: Mapping[str, Any], *, protect: bool = False) -> Resource:
    urn = f"urn:pulumi:{STACK}::syncbot::{typ}::{name}"
    return Resource(typ, name, urn, dict(props), dict(props), protect=protect)


def mandatory(resources: list[Resource]) -> list[tuple[str, str | None]]:
    """``(rule, resource name)`` of each mandatory finding, the stack's exports aside."""
    found: list[Violation] = evaluate(
        resources,
        stack_urn=STACK_URN,
        stack_outputs={"deploy_role": "d", "artifact_bucket": "b", "region": "r"},
    )
    names = {r.urn: r.name for r in resources}
    return [(v.policy, names.get(v.resource or "")) for v in found if v.mandatory]


@pytest.fixture(autouse=True)
def production() -> Any:
    set_all_config({"syncbot:production": "true"}, [])
    yield
    set_all_config({}, [])


PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"


@pytest.mark.parametrize(
    "role",
    [
        "roles/owner",
        "roles/editor",
        "roles/iam.serviceAccountAdmin",
        "roles/iam.serviceAccountUser",
        "roles/secretmanager.admin",
        "roles/run.admin",
        "roles/cloudsql.admin",
    ],
)
def test_project_wide_admin_role(role: str) -> None:
    clean = resource(
        PROJECT_MEMBER,
        "confined",
        {
            "project": "p",
            "role": "roles/run.admin",
            "member": DEPLOYER,
            "condition": {"title": "t", "expression": CONFINED},
        },
    )
    browser = resource(
        PROJECT_MEMBER, "browser", {"project": "p", "role": "roles/browser", "member": DEPLOYER}
    )
    seeded = resource(PROJECT_MEMBER, "seeded", {"project": "p", "role": role, "member": DEPLOYER})
    assert mandatory([clean, browser]) == []
    assert mandatory([clean, browser, seeded]) == [("syncbot-gcp-iam-no-project-admin", "seeded")]


def test_project_admin_with_an_always_true_condition() -> None:
    seeded = resource(
        PROJECT_MEMBER,
        "seeded",
        {
            "project": "p",
            "role": "roles/secretmanager.admin",
            "member": DEPLOYER,
            "condition": {"title": "t", "expression": CONFINED + " || true"},
        },
    )
    assert mandatory([seeded]) == [("syncbot-gcp-iam-no-project-admin", "seeded")]


WIF = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
PINNED = "assertion.repository == 'acme/syncbot' && assertion.ref == 'refs/heads/main'"


@pytest.mark.parametrize("tail", [" || true", " || 'a' == 'a'", " || (true)"])
def test_or_true_wif_condition(tail: str) -> None:
    base = {
        "workloadIdentityPoolId": "syncbot-prod-gh",
        "workloadIdentityPoolProviderId": "github",
        "oidc": {"issuerUri": "https://token.actions.githubusercontent.com"},
    }
    clean = resource(WIF, "clean", {**base, "attributeCondition": PINNED})
    seeded = resource(WIF, "seeded", {**base, "attributeCondition": PINNED + tail})
    assert mandatory([clean]) == []
    assert mandatory([clean, seeded]) == [("syncbot-gcp-wif-attribute-condition", "seeded")]


ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


@pytest.mark.parametrize(
    ("actions", "resource_arn"),
    [
        (["s3:*"], "arn:aws:s3:::syncbot-prod-artifacts/*"),
        (["iam:Put*"], "arn:aws:iam::123456789012:role/syncbot-prod-app-*"),
        (["lambda:*Function*"], "arn:aws:lambda:eu-west-1:123456789012:function:syncbot-x"),
        (["secretsmanager:*"], "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-*"),
    ],
)
def test_wildcard_action_on_a_narrow_resource(actions: list[str], resource_arn: str) -> None:
    def role_policy(name: str, statement_actions: list[str]) -> Resource:
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": statement_actions, "Resource": [resource_arn]},
                {"Effect": "Allow", "Action": ["ec2:Describe*"], "Resource": ["*"]},
            ],
        }
        return resource(ROLE_POLICY, name, {"role": "r", "policy": json.dumps(document)})

    clean = role_policy("clean", ["s3:GetObject", "s3:PutObject"])
    seeded = role_policy("seeded", actions)
    assert mandatory([clean]) == []
    assert mandatory([clean, seeded]) == [("syncbot-aws-iam-no-wildcard-actions", "seeded")]


@pytest.mark.parametrize(
    ("typ", "props"),
    [
        ("aws:secretsmanager/secret:Secret", {"description": "syncbot TOKEN_ENCRYPTION_KEY"}),
        ("random:index/randomPassword:RandomPassword", {"length": 48, "special": False}),
        ("gcp:secretmanager/secret:Secret", {"secretId": "syncbot-prod-token-encryption-key"}),
    ],
)
def test_unprotected_production_key(typ: str, props: dict[str, Any]) -> None:
    protected = resource(typ, "protected", props, protect=True)
    seeded = resource(typ, "seeded", props, protect=False)
    assert mandatory([protected]) == []
    assert mandatory([protected, seeded]) == [("syncbot-stack-protect-production-state", "seeded")]
    # The same key in a development stack may go with its stack.
    set_all_config({"syncbot:production": "false"}, [])
    dev = Resource(typ, "seeded", "urn:pulumi:dev::syncbot::x::seeded", props, props)
    found = evaluate(
        [dev],
        stack_urn="urn:pulumi:dev::syncbot::pulumi:pulumi:Stack::s",
        stack_outputs={"deploy_role": "d", "artifact_bucket": "b", "region": "r"},
    )
    assert not [v for v in found if v.mandatory]
