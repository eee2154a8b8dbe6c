"""Resource rule: in production, state that cannot be recreated is protected.

Destroying or renaming the token encryption key makes every stored workspace token unreadable;
the database and its secrets hold everything else. Pulumi's ``protect`` makes a destroy (or a
replacement caused by a rename) fail instead of deleting them; the components set it, with
``retain_on_delete``, whenever the stack is production.
"""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from policies.common import applies_to, is_production, resource_rule, string_list

# Stateful resource types whose loss loses data or keys.
STATEFUL: tuple[str, ...] = (
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
    "aws:secretsmanager/secret:Secret",
    "aws:s3/bucket:Bucket",
    "gcp:sql/databaseInstance:DatabaseInstance",
    "gcp:sql/database:Database",
    "gcp:secretmanager/secret:Secret",
    "gcp:storage/bucket:Bucket",
    "gcp:artifactregistry/repository:Repository",
    # A generated key or password lives only in state until its secret version holds it.
    "random:index/randomPassword:RandomPassword",
)


@applies_to(*STATEFUL)
def validate_protected(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Report a stateful resource of a production stack that a destroy would delete."""
    config = args.get_config()
    if args.resource_type in (config.get("exemptTypes") or ()):
        return
    if is_production(args.urn, config) and not args.opts.protect:
        report_violation(
            f"{args.name} holds state that cannot be recreated (keys, data) but is not "
            "protected; set protect (and retain_on_delete) in production.",
            None,
        )


protect_production_state = resource_rule(
    name="syncbot-stack-protect-production-state",
    description="Keys, secrets, databases and buckets of production stacks must be protected.",
    validate=validate_protected,
    severity=Severity.CRITICAL,
    config={
        "productionStacks": string_list(description="Stack names or globs that are production."),
        "exemptTypes": string_list(description="Type tokens not to require protection for."),
    },
)

POLICIES = (protect_production_state,)
