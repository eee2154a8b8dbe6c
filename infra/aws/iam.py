"""IAM policy documents, built as plain data so they are testable without Pulumi."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE = "sts.amazonaws.com"

Document = dict[str, Any]


def service_trust_policy(service: str, *, source_account: str | None = None) -> Document:
    """A trust policy letting one AWS service principal assume the role.

    Args:
        service: The service principal (``lambda.amazonaws.com``).
        source_account: When set, only that account's resources may use the role (guards
            against the confused-deputy problem for services acting on a caller's behalf).

    Returns:
        The policy document.
    """
    statement: Document = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def github_trust_policy(provider_arn: str, subject: str) -> Document:
    """The deploy role's trust: one repository and one branch or environment, STS audience.

    Args:
        provider_arn: ARN of the account's GitHub Actions OIDC provider.
        subject: The exact ``sub`` claim (``repo:org/repo:environment:prod``); never a pattern.

    Returns:
        The policy document.

    Raises:
        ValueError: if the subject contains a wildcard.
    """
    if "*" in subject or "?" in subject:
        raise ValueError(f"OIDC subject must be exact, got {subject!r}")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                        f"{GITHUB_OIDC_HOST}:sub": subject,
                    }
                },
            }
        ],
    }


def allow(actions: Sequence[str], resources: Sequence[str], **condition: Any) -> Document:
    """One ``Allow`` statement (``condition`` is the IAM ``Condition`` block, if any)."""
    statement: Document = {
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": list(resources),
    }
    if condition:
        statement["Condition"] = condition
    return statement


def policy(*statements: Document) -> Document:
    """A policy document from statements."""
    return {"Version": "2012-10-17", "Statement": list(statements)}
