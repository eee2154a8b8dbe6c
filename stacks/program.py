"""The Pulumi program: read the stack config, build the provider's stack, export its outputs."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from stacks.config import StackConfig, StackConfigError, load_stack_config


def build(config: StackConfig) -> Mapping[str, pulumi.Input[object]]:
    """Declares the resources of the configured provider and stack kind.

    Args:
        config: The validated stack configuration.

    Returns:
        The stack exports by name.
    """
    if config.provider == "aws":
        from stacks import aws

        return aws.build(config)
    # Imported lazily: each provider's SDK and components load only for its own stacks.
    from stacks import gcp

    return gcp.build(config)


def main() -> None:
    """Entry of the root ``__main__.py``.

    Raises:
        pulumi.RunError: on invalid stack configuration; Pulumi prints the message (which names
            every bad key) without a traceback.
    """
    try:
        exports = build(load_stack_config())
    except StackConfigError as exc:
        raise pulumi.RunError(str(exc)) from None
    for name, value in exports.items():
        pulumi.export(name, value)
