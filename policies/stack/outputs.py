"""Stack rule: the bootstrap outputs CI and operators rely on are exported.

The contract's outputs come from two kinds of stack. A bootstrap stack creates the CI deploy
identity and the artifact store, so it must export ``deploy_role``, ``artifact_bucket`` and
``region`` (``service_url`` is optional at bootstrap). A stack that serves the app must export
``service_url`` (Slack's request URL) and ``region``; its deploy role and artifact store may
live in the bootstrap stack. Exporting more is always fine.
"""

from __future__ import annotations

from pulumi_policy import ReportViolation, Severity, StackValidationArgs

from infra.contract import (
    OUTPUT_ARTIFACT_BUCKET,
    OUTPUT_DEPLOY_ROLE,
    OUTPUT_REGION,
    OUTPUT_SERVICE_URL,
)
from policies.common import stack_rule, string_list
from policies.stack.wiring import app_workloads

STACK = "pulumi:pulumi:Stack"

BOOTSTRAP_REQUIRED: tuple[str, ...] = (OUTPUT_DEPLOY_ROLE, OUTPUT_ARTIFACT_BUCKET, OUTPUT_REGION)
APP_REQUIRED: tuple[str, ...] = (OUTPUT_SERVICE_URL, OUTPUT_REGION)


def validate_bootstrap_outputs(
    args: StackValidationArgs, report_violation: ReportViolation
) -> None:
    """Report each contract output the stack does not export.

    Only the presence of a key is checked: during a preview the values are still unknown.
    """
    root = next((r for r in args.resources if r.resource_type == STACK), None)
    if root is None:
        report_violation("the stack resource is missing; cannot read its outputs.", None)
        return
    configured = args.get_config().get("requiredOutputs")
    if configured:
        required = tuple(configured)
    else:
        required = APP_REQUIRED if app_workloads(args.resources) else BOOTSTRAP_REQUIRED
    # Keys only: a preview knows which outputs exist before it knows their values.
    exported = set(iter(root.props))
    missing = [name for name in required if name not in exported]
    if missing:
        report_violation(f"missing stack outputs: {', '.join(missing)}.", root.urn)


bootstrap_outputs = stack_rule(
    name="syncbot-stack-bootstrap-outputs",
    description="Stacks must export the contract outputs (deploy_role, artifact_bucket, ...).",
    validate=validate_bootstrap_outputs,
    severity=Severity.MEDIUM,
    config={"requiredOutputs": string_list(description="Overrides the per-kind defaults.")},
)

POLICIES = (bootstrap_outputs,)
