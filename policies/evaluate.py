"""Run the pack's rules over resources recorded outside the engine (the offline plan).

The Pulumi CLI normally feeds the analyzer; without it, the program runs under the mock runtime
and its registrations are handed here. Resource rules see each resource's inputs, stack rules
see every resource's outputs plus the stack's exports, both as camelCase engine names behind
the SDK's unknown-checking proxy, exactly as the analyzer presents them.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policies.catalog import POLICIES

STACK_TYPE = "pulumi:pulumi:Stack"
# The pack's default level, as ``policies/__main__.py`` declares it.
PACK_ENFORCEMENT = EnforcementLevel.MANDATORY


@dataclass(frozen=True, slots=True)
class Resource:
    """One registered resource, with plain (unwrapped) values."""

    resource_type: str
    name: str
    urn: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    protect: bool = False
    retain_on_delete: bool = False


@dataclass(frozen=True, slots=True)
class Violation:
    """A rule's finding, in the shape the plan reports."""

    policy: str
    enforcement: str
    resource: str | None
    """The offending resource's URN; ``None`` for a finding about the whole stack."""
    message: str
    blind: bool = False
    """The rule could not judge: a value it read is unknown (a preview); the analyzer
    reports that as advisory whatever the rule's level."""

    @property
    def mandatory(self) -> bool:
        """Whether the finding blocks a deployment."""
        return self.enforcement == EnforcementLevel.MANDATORY.value


@dataclass
class _Collector:
    policy: Policy
    level: EnforcementLevel
    default_urn: str | None
    found: list[Violation] = field(default_factory=list)

    def report(self, message: str, urn: str | None = None) -> None:
        self.found.append(
            Violation(self.policy.name, self.level.value, urn or self.default_urn, message)
        )

    def run(self, args: ResourceValidationArgs | StackValidationArgs) -> None:
        try:
            result = self.policy.validate(args, self.report)  # type: ignore[arg-type]
            if inspect.isawaitable(result):
                asyncio.run(_awaited(result))
        except UnknownValueError as exc:
            # The analyzer downgrades these to an advisory note; so do we.
            self.found.append(
                Violation(
                    self.policy.name,
                    EnforcementLevel.ADVISORY.value,
                    self.default_urn,
                    f"cannot run on unknown values: {exc.message}",
                    blind=True,
                )
            )


async def _awaited(result: Any) -> None:
    await result


def _level(policy: Policy, pack_config: Mapping[str, Any]) -> EnforcementLevel:
    configured = pack_config.get(policy.name)
    if isinstance(configured, Mapping):
        configured = configured.get("enforcementLevel")
    if configured is not None:
        return EnforcementLevel(configured)
    return policy.enforcement_level or PACK_ENFORCEMENT


def _properties(policy: Policy, pack_config: Mapping[str, Any]) -> dict[str, Any]:
    configured = pack_config.get(policy.name)
    if not isinstance(configured, Mapping):
        return {}
    return {k: v for k, v in configured.items() if k != "enforcementLevel"}


def _options(parent: str | None, protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)


def _policy_resource(
    resource_type: str,
    props: Mapping[str, Any],
    urn: str,
    name: str,
    parent: str | None,
    protect: bool = False,
) -> PolicyResource:
    # Parent and dependencies are linked by stack_resources once every resource exists.
    return PolicyResource(
        resource_type,
        unknown_checking_proxy(dict(props)),
        urn,
        name,
        _options(parent, protect),
        None,
        None,
        [],
        {},
    )


def stack_resources(
    resources: Sequence[Resource], stack_urn: str, stack_outputs: Mapping[str, Any]
) -> list[PolicyResource]:
    """The stack as stack rules see it: outputs per resource, linked parents and dependencies.

    Args:
        resources: Every registered resource (the stack itself excluded).
        stack_urn: The URN of the root stack resource.
        stack_outputs: The stack's exports.

    Returns:
        One :class:`PolicyResource` per resource, the stack first.
    """
    root = _policy_resource(
        STACK_TYPE, stack_outputs, stack_urn, stack_urn.rsplit("::", 1)[-1], None
    )
    converted = [root]
    by_urn = {stack_urn: root}
    for resource in resources:
        policy_resource = _policy_resource(
            resource.resource_type,
            resource.outputs,
            resource.urn,
            resource.name,
            resource.parent,
            resource.protect,
        )
        converted.append(policy_resource)
        by_urn[resource.urn] = policy_resource
    for resource, policy_resource in zip(resources, converted[1:], strict=True):
        policy_resource.parent = by_urn.get(resource.parent or "")
        policy_resource.dependencies = [by_urn[d] for d in resource.dependencies if d in by_urn]
    return converted


def evaluate(
    resources: Sequence[Resource],
    *,
    stack_urn: str,
    stack_outputs: Mapping[str, Any],
    pack_config: Mapping[str, Any] | None = None,
    policies: Sequence[Policy] = POLICIES,
) -> list[Violation]:
    """Run every enabled rule over a recorded stack.

    Args:
        resources: Every registered resource (the stack itself excluded), plain values.
        stack_urn: The URN of the root stack resource.
        stack_outputs: The stack's exports, plain values.
        pack_config: Policy pack config as ``--policy-pack-config`` takes it: policy name to an
            enforcement level or to ``{"enforcementLevel": ..., <property>: ...}``.
        policies: The rules to run (the whole pack by default).

    Returns:
        Every finding, resource rules first, in resource order.
    """
    pack_config = pack_config or {}
    found: list[Violation] = []
    enabled = [
        (policy, level)
        for policy in policies
        if (level := _level(policy, pack_config)) is not EnforcementLevel.DISABLED
    ]
    for resource in resources:
        for policy, level in enabled:
            if not isinstance(policy, ResourceValidationPolicy):
                continue
            args = ResourceValidationArgs(
                resource.resource_type,
                unknown_checking_proxy(dict(resource.inputs)),
                resource.urn,
                resource.name,
                _options(resource.parent, resource.protect),
                None,
                _properties(policy, pack_config),
            )
            collector = _Collector(policy, _effective(level), resource.urn)
            collector.run(args)
            found += collector.found
    stack = stack_resources(resources, stack_urn, stack_outputs)
    for policy, level in enabled:
        if isinstance(policy, StackValidationPolicy):
            collector = _Collector(policy, _effective(level), None)
            collector.run(StackValidationArgs(stack, _properties(policy, pack_config)))
            found += collector.found
    return found


def _effective(level: EnforcementLevel) -> EnforcementLevel:
    # A violation left after remediation counts as mandatory, as in the analyzer.
    return EnforcementLevel.MANDATORY if level is EnforcementLevel.REMEDIATE else level
