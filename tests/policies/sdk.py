"""Build the policy SDK's own argument objects and collect what a policy reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy


def urn(resource_type: str, name: str, stack: str = "dev") -> str:
    return f"urn:pulumi:{stack}::syncbot::{resource_type}::{name}"


def options(parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)


def resource_args(
    resource_type: str,
    props: Mapping[str, Any],
    *,
    name: str = "res",
    stack: str = "dev",
    config: Mapping[str, Any] | None = None,
) -> ResourceValidationArgs:
    """Arguments as the analyzer builds them (props behind the unknown-checking proxy)."""
    return ResourceValidationArgs(
        resource_type,
        unknown_checking_proxy(dict(props)),
        urn(resource_type, name, stack),
        name,
        options(),
        None,
        config,
    )


def stack_resource(
    resource_type: str,
    props: Mapping[str, Any],
    *,
    name: str = "res",
    dependencies: Sequence[PolicyResource] = (),
) -> PolicyResource:
    return PolicyResource(
        resource_type,
        unknown_checking_proxy(dict(props)),
        urn(resource_type, name),
        name,
        options(),
        None,
        None,
        list(dependencies),
        {},
    )


def check(policy: Policy, args: ResourceValidationArgs | StackValidationArgs) -> list[str]:
    """Run one policy and return the messages it reported."""
    messages: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        messages.append(message)

    if isinstance(policy, ResourceValidationPolicy):
        assert isinstance(args, ResourceValidationArgs)
        policy.validate(args, report)
    else:
        assert isinstance(policy, StackValidationPolicy)
        assert isinstance(args, StackValidationArgs)
        policy.validate(args, report)
    return messages


def check_resource(
    policy: Policy, resource_type: str, props: Mapping[str, Any], **kwargs: Any
) -> list[str]:
    return check(policy, resource_args(resource_type, props, **kwargs))


def check_stack(
    policy: Policy, resources: Sequence[PolicyResource], config: Mapping[str, Any] | None = None
) -> list[str]:
    return check(policy, StackValidationArgs(list(resources), config))
