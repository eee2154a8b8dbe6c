"""IAM rules: Workload Identity providers pinned to a repository, secrets granted per secret,
invoke and enqueue rights granted on one service or queue, never on the project."""

from __future__ import annotations

import re

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from policies.common import (
    applies_to,
    as_document,
    as_list,
    get_path,
    resource_rule,
    string_list,
)

WIF_PROVIDER = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
PROJECT_BINDING = "gcp:projects/iAMBinding:IAMBinding"
PROJECT_POLICY = "gcp:projects/iAMPolicy:IAMPolicy"

SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
# Project-wide, these let an identity call every Cloud Run service or fill every queue.
RESOURCE_LEVEL_ROLES: tuple[str, ...] = ("roles/cloudtasks.enqueuer", "roles/run.invoker")

# The condition must compare an identity claim for equality: repository owner alone (or a
# startsWith on it) still admits every repository of the organisation.
_PINNING_CLAUSE = re.compile(r"(assertion|attribute)\.(repository|repository_id|sub)\s*==\s*")


@applies_to(WIF_PROVIDER)
def validate_attribute_condition(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report an OIDC provider that lets any GitHub repository exchange tokens."""
    condition = str(get_path(args.props, "attributeCondition", default="")).strip()
    if not condition:
        report_violation("attributeCondition is empty; any repository could authenticate.", None)
    elif not _PINNING_CLAUSE.search(condition):
        report_violation(
            f"attributeCondition {condition!r} does not pin assertion.repository (or its id).",
            None,
        )


def _project_roles(args: ResourceValidationArgs) -> list[str]:
    if args.resource_type == PROJECT_POLICY:
        document = as_document(get_path(args.props, "policyData")) or {}
        return [str(get_path(b, "role", default="")) for b in as_list(document.get("bindings"))]
    return [str(get_path(args.props, "role", default=""))]


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

POLICIES = (wif_attribute_condition, no_project_secret_accessor, resource_level_invokers)
