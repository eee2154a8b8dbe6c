"""IAM rules: Workload Identity providers pinned to a repository, secrets granted per secret,
invoke and enqueue rights granted on one service or queue, no admin or act-as role over the
whole project. Conditions are judged for what they admit (:mod:`policies.gcp.cel`)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from policies.common import (
    applies_to,
    as_document,
    as_list,
    get_path,
    resource_rule,
    string_list,
)
from policies.gcp.cel import admits_any_repository, confines_to_resources

WIF_PROVIDER = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
PROJECT_BINDING = "gcp:projects/iAMBinding:IAMBinding"
PROJECT_POLICY = "gcp:projects/iAMPolicy:IAMPolicy"

SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
# Project-wide, these let an identity call every Cloud Run service or fill every queue.
RESOURCE_LEVEL_ROLES: tuple[str, ...] = ("roles/cloudtasks.enqueuer", "roles/run.invoker")

# Roles that administer a service, act as any service account or own the project: on the
# whole project each reaches every resource of its kind, including other workloads'.
_ADMIN_ROLE = re.compile(r"^roles/(owner|editor|[A-Za-z0-9]+\.([A-Za-z]*[Aa]dmin|owner))$")
IMPERSONATION_ROLES: frozenset[str] = frozenset(
    {
        "roles/iam.serviceAccountUser",
        "roles/iam.serviceAccountTokenCreator",
        "roles/iam.workloadIdentityUser",
        "roles/iam.serviceAccountKeyAdmin",
    }
)


def is_powerful_role(role: str) -> bool:
    """Whether a role administers, owns or impersonates (judged by what the role grants)."""
    return bool(_ADMIN_ROLE.match(role)) or role in IMPERSONATION_ROLES


@applies_to(WIF_PROVIDER)
def validate_attribute_condition(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report an OIDC provider whose condition admits tokens of other repositories."""
    condition = str(get_path(args.props, "attributeCondition", default="")).strip()
    if not condition:
        report_violation("attributeCondition is empty; any repository could authenticate.", None)
        return
    problem = admits_any_repository(condition)
    if problem is not None:
        report_violation(
            f"attributeCondition {condition!r} admits other repositories: {problem}.", None
        )


def _project_grants(args: ResourceValidationArgs) -> Iterator[tuple[str, str]]:
    """``(role, condition expression)`` of each project-level grant (``""``: unconditional)."""
    if args.resource_type == PROJECT_POLICY:
        document = as_document(get_path(args.props, "policyData")) or {}
        for binding in as_list(document.get("bindings")):
            yield (
                str(get_path(binding, "role", default="")),
                str(get_path(binding, "condition", "expression", default="")),
            )
        return
    yield (
        str(get_path(args.props, "role", default="")),
        str(get_path(args.props, "condition", "expression", default="")),
    )


def _project_roles(args: ResourceValidationArgs) -> list[str]:
    return [role for role, _ in _project_grants(args)]


@applies_to(PROJECT_MEMBER, PROJECT_BINDING, PROJECT_POLICY)
def validate_no_project_admin(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report an admin, owner or act-as role on the whole project.

    Such a grant is acceptable only with a condition confining it to resources named for the
    deployment (and the project itself, where an API checks creation); a condition that is
    always true confines nothing.
    """
    allowed = set(args.get_config().get("allowedRoles") or ())
    for role, condition in _project_grants(args):
        if role in allowed or not is_powerful_role(role):
            continue
        problem = confines_to_resources(condition)
        if problem is not None:
            report_violation(
                f"{role} on the whole project ({problem}); grant it on the resources it "
                "deploys, or confine it with a resource.name condition.",
                None,
            )


def _forbidden_project_roles(
    args: ResourceValidationArgs, config_key: str, default: tuple[str, ...]
) -> list[str]:
    """The roles the grant gives on the whole project that the rule's config forbids there."""
    forbidden = set(args.get_config().get(config_key) or default)
    return [role for role in _project_roles(args) if role in forbidden]


@applies_to(PROJECT_MEMBER, PROJECT_BINDING, PROJECT_POLICY)
def validate_no_project_secret_access(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report a project-level grant that reads every secret of the project."""
    for role in _forbidden_project_roles(args, "forbiddenRoles", (SECRET_ACCESSOR,)):
        report_violation(
            f"{role} granted on the whole project; grant it on each secret instead.", None
        )


@applies_to(PROJECT_MEMBER, PROJECT_BINDING, PROJECT_POLICY)
def validate_resource_level_invokers(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report ``run.invoker`` or ``cloudtasks.enqueuer`` granted on the whole project."""
    for role in _forbidden_project_roles(args, "resourceLevelRoles", RESOURCE_LEVEL_ROLES):
        report_violation(
            f"{role} granted on the whole project; grant it on the one service or queue.", None
        )


wif_attribute_condition = resource_rule(
    name="syncbot-gcp-wif-attribute-condition",
    description="Workload Identity providers must pin the GitHub repository in a condition.",
    validate=validate_attribute_condition,
    severity=Severity.CRITICAL,
)

no_project_secret_accessor = resource_rule(
    name="syncbot-gcp-no-project-secret-accessor",
    description="Secret access must be granted per secret, not on the whole project.",
    validate=validate_no_project_secret_access,
    severity=Severity.HIGH,
    config={"forbiddenRoles": string_list(default=(SECRET_ACCESSOR,))},
)

resource_level_invokers = resource_rule(
    name="syncbot-gcp-invoker-roles-resource-level",
    description="Run invoker and Cloud Tasks enqueuer roles must be granted per resource.",
    validate=validate_resource_level_invokers,
    severity=Severity.HIGH,
    config={"resourceLevelRoles": string_list(default=RESOURCE_LEVEL_ROLES)},
)

no_project_admin = resource_rule(
    name="syncbot-gcp-iam-no-project-admin",
    description="Admin, owner and act-as roles must not apply to the whole project.",
    validate=validate_no_project_admin,
    severity=Severity.CRITICAL,
    config={"allowedRoles": string_list(description="Roles exempted (break-glass only).")},
)

POLICIES = (
    wif_attribute_condition,
    no_project_secret_accessor,
    resource_level_invokers,
    no_project_admin,
)
