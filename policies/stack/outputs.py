"""Stack rule: the bootstrap outputs CI and operators rely on are exported."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.contract import BOOTSTRAP_OUTPUTS

STACK = "pulumi:pulumi:Stack"


def validate_bootstrap_outputs(
    args: StackValidationArgs, report_violation: ReportViolation
) -> None:
    """Report each bootstrap output the stack does not export.

    Only the presence of a key is checked: during a preview the values are still unknown.
    """
    required = tuple(args.get_config().get("requiredOutputs") or BOOTSTRAP_OUTPUTS)
    root = next((r for r in args.resources if r.resource_type == STACK), None)
    if root is None:
        report_violation("the stack resource is missing; cannot read its outputs.", None)
        return
    missing = [name for name in required if name not in root.props]
    if missing:
        report_violation(f"missing stack outputs: {', '.join(missing)}.", root.urn)


bootstrap_outputs = StackValidationPolicy(
    name="syncbot-stack-bootstrap-outputs",
    description="Stacks must export the bootstrap outputs (deploy_role, artifact_bucket, ...).",
    validate=validate_bootstrap_outputs,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.MEDIUM,
    config_schema=PolicyConfigSchema(
        properties={
            "requiredOutputs": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(BOOTSTRAP_OUTPUTS),
            }
        }
    ),
)

POLICIES = (bootstrap_outputs,)
