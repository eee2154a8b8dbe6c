"""Cloud Run rule: secret env vars come from Secret Manager by reference, never as values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from policies.common import (
    applies_to,
    as_list,
    get_path,
    plaintext_secret,
    read_known,
    resource_rule,
    string_list,
)

SERVICE_V2 = "gcp:cloudrunv2/service:Service"
JOB_V2 = "gcp:cloudrunv2/job:Job"
SERVICE_V1 = "gcp:cloudrun/service:Service"


def containers(resource_type: str, props: Any) -> list[Any]:
    """The container specs of a Cloud Run service or job, whatever the API version."""
    if resource_type == SERVICE_V2:
        return as_list(get_path(props, "template", "containers"))
    if resource_type == JOB_V2:
        return as_list(get_path(props, "template", "template", "containers"))
    return as_list(get_path(props, "template", "spec", "containers"))


def iter_env(resource_type: str, props: Any) -> Iterator[Any]:
    """Every env entry of every container."""
    for container in containers(resource_type, props):
        yield from as_list(get_path(container, "envs"))


@applies_to(SERVICE_V2, JOB_V2, SERVICE_V1)
def validate_secrets_by_reference(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report a secret-named or credential-shaped env var given as a literal value."""
    allowed = tuple(args.get_config().get("allowedNames") or ())
    for env in iter_env(args.resource_type, args.props):
        name = str(get_path(env, "name", default=""))
        leak = plaintext_secret(name, read_known(env, "value"), allowed)
        if leak == "name":
            report_violation(
                f"env {name} is a literal value; read it with valueSource.secretKeyRef.", None
            )
        elif leak == "value":
            report_violation(f"env {name} holds a credential-shaped literal value.", None)


secrets_by_reference = resource_rule(
    name="syncbot-gcp-cloudrun-secrets-by-reference",
    description="Cloud Run secrets must be referenced from Secret Manager, not set as values.",
    validate=validate_secrets_by_reference,
    severity=Severity.CRITICAL,
    config={"allowedNames": string_list()},
)

POLICIES = (secrets_by_reference,)
