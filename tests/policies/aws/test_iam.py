from __future__ import annotations

import json
from typing import Any

import pytest

from policies.aws import iam
from tests.policies.sdk import check_resource

OIDC = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"


def trust(conditions: dict[str, Any]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": OIDC},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": conditions,
                }
            ],
        }
    )


def pinned(*subjects: str) -> str:
    return trust(
        {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": list(subjects),
            }
        }
    )


@pytest.mark.parametrize(
    "subject",
    [
        "repo:acme/syncbot:environment:prod",
        "repo:acme/syncbot:ref:refs/heads/main",
        "repo:acme/syncbot:pull_request",
    ],
)
def test_pinned_trust_passes(subject: str) -> None:
    props = {"assumeRolePolicy": pinned(subject)}
    assert check_resource(iam.oidc_trust_pinned, iam.ROLE, props) == []


@pytest.mark.parametrize(
    "subject", ["repo:acme/syncbot:*", "*", "repo:acme/*:ref:refs/heads/main", "repo:acme/syncbot"]
)
def test_wildcard_or_unqualified_subject_is_reported(subject: str) -> None:
    props = {"assumeRolePolicy": pinned(subject)}
    assert check_resource(iam.oidc_trust_pinned, iam.ROLE, props) == [
        f"OIDC trust: subject {subject!r} is not pinned to one repository and one ref, "
        "environment or pull_request."
    ]


def test_missing_subject_and_audience_are_reported() -> None:
    props = {"assumeRolePolicy": trust({})}
    assert check_resource(iam.oidc_trust_pinned, iam.ROLE, props) == [
        "OIDC trust: the audience must be pinned with StringEquals to sts.amazonaws.com.",
        "OIDC trust: no subject condition: any GitHub repository could assume the role.",
    ]


def test_allowed_repositories_are_configurable() -> None:
    props = {"assumeRolePolicy": pinned("repo:evil/fork:ref:refs/heads/main")}
    config = {"allowedRepositories": ["acme/syncbot"]}
    assert len(check_resource(iam.oidc_trust_pinned, iam.ROLE, props, config=config)) == 1


def test_service_trust_is_not_an_oidc_trust() -> None:
    document = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
    }
    assert check_resource(iam.oidc_trust_pinned, iam.ROLE, {"assumeRolePolicy": document}) == []


ADMIN = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
SCOPED = {
    "Statement": [
        {"Effect": "Allow", "Action": ["lambda:*"], "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::syncbot-artifacts/*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*"},
    ]
}


@pytest.mark.parametrize("resource_type", [iam.ROLE_POLICY, iam.POLICY, iam.USER_POLICY])
def test_wildcard_admin_document_is_reported(resource_type: str) -> None:
    assert check_resource(iam.no_wildcard_admin, resource_type, {"policy": json.dumps(ADMIN)}) == [
        "policy allows action '*' on resource '*'."
    ]
    assert check_resource(iam.no_wildcard_admin, resource_type, {"policy": SCOPED}) == []


def test_wildcard_admin_inline_role_policy_is_reported() -> None:
    props = {"inlinePolicies": [{"name": "deploy", "policy": json.dumps(ADMIN)}]}
    assert check_resource(iam.no_wildcard_admin, iam.ROLE, props) == [
        "deploy allows action '*' on resource '*'."
    ]


def test_administrator_access_attachment_is_reported() -> None:
    attach = {"role": "deploy", "policyArn": iam.ADMIN_POLICY_ARN}
    assert check_resource(iam.no_wildcard_admin, iam.ROLE_POLICY_ATTACHMENT, attach) != []
    readonly = {"role": "deploy", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
    assert check_resource(iam.no_wildcard_admin, iam.ROLE_POLICY_ATTACHMENT, readonly) == []
