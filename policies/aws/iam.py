"""IAM rules: GitHub OIDC trust pinned to a repository and context, no admin wildcards."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from policies.aws.permissions import broad_actions
from policies.common import (
    applies_to,
    as_document,
    as_list,
    get_path,
    iter_statements,
    resource_rule,
    string_list,
)

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY = "aws:iam/policy:Policy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"

GITHUB_ISSUER = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"

# repo:OWNER/REPO:<context>, where the context names one branch/tag ref, one environment, or
# pull requests of that repository; anything looser lets other workflows assume the role.
_PINNED_SUBJECT = re.compile(
    r"^repo:[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+:"
    r"(ref:refs/(heads|tags)/[^*?]+|environment:[^*?]+|pull_request)$"
)


def _condition_values(statement: Mapping[str, Any], key: str) -> Iterator[tuple[str, str]]:
    """Yield ``(operator, value)`` for every condition on ``key`` in a statement."""
    conditions = statement.get("Condition")
    if not isinstance(conditions, Mapping):
        return
    for operator, clauses in conditions.items():
        if isinstance(clauses, Mapping) and key in clauses:
            for value in as_list(clauses[key]):
                yield str(operator), str(value)


def _trusts_github(statement: Mapping[str, Any]) -> bool:
    federated = as_list(get_path(statement, "Principal", "Federated"))
    return any(GITHUB_ISSUER in str(principal) for principal in federated)


def trust_problems(document: Mapping[str, Any] | None, repositories: tuple[str, ...]) -> list[str]:
    """Every way a role trust policy lets more than one pinned GitHub context assume it.

    Args:
        document: The parsed ``assumeRolePolicy``.
        repositories: ``OWNER/REPO`` names allowed; empty means any single repository.

    Returns:
        Human-readable problems; empty when every GitHub statement is pinned.
    """
    problems: list[str] = []
    for statement in iter_statements(document):
        if statement.get("Effect", "Allow") != "Allow" or not _trusts_github(statement):
            continue
        audiences = [
            v
            for op, v in _condition_values(statement, f"{GITHUB_ISSUER}:aud")
            if op == "StringEquals"
        ]
        if audiences != [AUDIENCE]:
            problems.append(f"the audience must be pinned with StringEquals to {AUDIENCE}")
        subjects = list(_condition_values(statement, f"{GITHUB_ISSUER}:sub"))
        if not subjects:
            problems.append("no subject condition: any GitHub repository could assume the role")
        for operator, subject in subjects:
            if operator.startswith("ForAnyValue") or operator.endswith("IfExists"):
                problems.append(f"{operator} does not pin the subject {subject!r}")
            elif not _PINNED_SUBJECT.match(subject):
                problems.append(
                    f"subject {subject!r} is not pinned to one repository and one ref, "
                    "environment or pull_request"
                )
            elif repositories and subject.split(":")[1] not in repositories:
                problems.append(f"subject {subject!r} names a repository outside the allowed set")
    return problems


@applies_to(ROLE)
def validate_oidc_trust(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Report a GitHub OIDC trust that is not pinned to one repository and context."""
    repositories = tuple(args.get_config().get("allowedRepositories") or ())
    document = as_document(get_path(args.props, "assumeRolePolicy"))
    for problem in trust_problems(document, repositories):
        report_violation(f"OIDC trust: {problem}.", None)


def _is_wildcard_admin(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect", "Allow") != "Allow":
        return False
    actions = {str(a) for a in as_list(statement.get("Action"))}
    resources = {str(r) for r in as_list(statement.get("Resource"))}
    return bool(actions & {"*", "*:*"}) and "*" in resources


def permission_documents(args: ResourceValidationArgs) -> Iterator[tuple[str, Any]]:
    """The permission policies a role or policy resource grants, each with a label for messages.

    Returns:
        ``(label, raw document)`` pairs: a role's inline policies by name (or index), otherwise
        the resource's one ``policy``.
    """
    if args.resource_type == ROLE:
        for index, inline in enumerate(as_list(get_path(args.props, "inlinePolicies"))):
            label = get_path(inline, "name", default=f"inlinePolicies[{index}]")
            yield str(label), get_path(inline, "policy")
    else:
        yield "policy", get_path(args.props, "policy")


@applies_to(ROLE, ROLE_POLICY, POLICY, USER_POLICY, GROUP_POLICY, ROLE_POLICY_ATTACHMENT)
def validate_no_wildcard_admin(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report an Allow of every action on every resource, or the AdministratorAccess policy."""
    if args.resource_type == ROLE_POLICY_ATTACHMENT:
        if get_path(args.props, "policyArn") == ADMIN_POLICY_ARN:
            report_violation("AdministratorAccess is attached; grant what is needed.", None)
        return
    for label, raw in permission_documents(args):
        if any(_is_wildcard_admin(s) for s in iter_statements(as_document(raw))):
            report_violation(f"{label} allows action '*' on resource '*'.", None)


@applies_to(ROLE, ROLE_POLICY, POLICY, USER_POLICY, GROUP_POLICY)
def validate_no_wildcard_actions(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report an Allow whose actions are a wildcard, whatever resource it names.

    ``s3:*`` on one bucket still grants deleting it and rewriting its policy; ``iam:Put*`` on
    the stack's roles still grants writing any inline policy into them. The effective
    permission is every action the pattern matches (today's and the service's future ones);
    only the read-only ``Describe*``/``List*``/``Get*`` families are exempt.
    """
    for label, raw in permission_documents(args):
        for statement in iter_statements(as_document(raw)):
            broad = broad_actions(statement)
            if broad:
                resources = [str(r) for r in as_list(statement.get("Resource"))] or ["(none)"]
                report_violation(
                    f"{label} allows {', '.join(broad)} on {', '.join(resources)}; list the "
                    "actions it needs.",
                    None,
                )


oidc_trust_pinned = resource_rule(
    name="syncbot-aws-iam-oidc-trust-pinned",
    description="Roles trusted by GitHub OIDC must pin the audience and one repository context.",
    validate=validate_oidc_trust,
    severity=Severity.CRITICAL,
    config={
        "allowedRepositories": string_list(description="OWNER/REPO names a deploy role may trust.")
    },
)

no_wildcard_admin = resource_rule(
    name="syncbot-aws-iam-no-wildcard-admin",
    description="IAM policies must not allow '*' actions on '*' resources.",
    validate=validate_no_wildcard_admin,
    severity=Severity.CRITICAL,
)

no_wildcard_actions = resource_rule(
    name="syncbot-aws-iam-no-wildcard-actions",
    description="IAM policies must list actions, not wildcards (read-only families excepted).",
    validate=validate_no_wildcard_actions,
    severity=Severity.HIGH,
)

POLICIES = (oidc_trust_pinned, no_wildcard_admin, no_wildcard_actions)
