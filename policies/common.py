"""Helpers shared by the rules: rule declarations, safe property reads, type filters, secret
heuristics.

Props reach a validator as the engine's camelCase mapping (wrapped by the analyzer in a proxy
that raises on unknown preview values), so every reader here works on any ``Mapping`` and
``Sequence`` rather than on ``dict``/``list``.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from pulumi.runtime.config import get_config
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from infra.contract import SECRET_ENV

ResourceCheck = Callable[[ResourceValidationArgs, ReportViolation], None]
StackCheck = Callable[[StackValidationArgs, ReportViolation], None]

# Stacks treated as production unless the pack config names others (``productionStacks``).
DEFAULT_PRODUCTION_STACKS: tuple[str, ...] = ("prod", "production", "prod-*", "*-prod")

# Env names that hold credentials even when the contract does not list them.
_SECRET_NAME = re.compile(
    r"(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_KEY|API_KEY|ACCESS_KEY|CREDENTIAL|ENCRYPTION_KEY)",
    re.IGNORECASE,
)
# A name ending like this carries a pointer to a secret, not the secret itself.
_REFERENCE_SUFFIX = re.compile(r"_(ARN|ARNS|NAME|ID|PATH|REF)$", re.IGNORECASE)
# Literal credential shapes: Slack tokens, AWS access keys, PEM private keys, GCP key files.
_SECRET_VALUE = re.compile(
    r"(xox[abposr]-[0-9A-Za-z-]{10,}|xapp-[0-9A-Za-z-]{10,}|\b(AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----|\"private_key_id\"\s*:)"
)


def applies_to(*resource_types: str) -> Callable[[ResourceCheck], ResourceCheck]:
    """Restrict a resource validator to the given type tokens.

    Args:
        *resource_types: Engine type tokens such as ``aws:rds/instance:Instance``.

    Returns:
        A decorator; the wrapped validator returns at once for any other type.
    """

    def decorate(check: ResourceCheck) -> ResourceCheck:
        @functools.wraps(check)
        def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
            if args.resource_type in resource_types:
                check(args, report_violation)

        validate.resource_types = resource_types  # type: ignore[attr-defined]
        return validate

    return decorate


def resource_rule(
    name: str,
    description: str,
    validate: ResourceCheck,
    severity: Severity,
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> ResourceValidationPolicy:
    """A rule checked on each resource; every rule of the pack blocks a deployment.

    Args:
        name: The rule's name (``syncbot-<aws|gcp>-...``), as the docs and CLI show it.
        description: One sentence, ending with a period.
        validate: The check (usually wrapped by :func:`applies_to`).
        severity: How bad a finding is.
        config: JSON schemas of the rule's config properties, by property name.
    """
    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=severity,
        config_schema=_schema(config),
    )


def stack_rule(
    name: str,
    description: str,
    validate: StackCheck,
    severity: Severity,
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> StackValidationPolicy:
    """A rule checked once over the whole stack; otherwise as :func:`resource_rule`."""
    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=severity,
        config_schema=_schema(config),
    )


def _schema(config: Mapping[str, Mapping[str, Any]] | None) -> PolicyConfigSchema | None:
    return PolicyConfigSchema(properties=dict(config)) if config else None


def string_list(
    *, default: Sequence[str] | None = None, description: str | None = None
) -> dict[str, Any]:
    """The JSON schema of a config property holding a list of strings."""
    schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
    if default is not None:
        schema["default"] = list(default)
    if description is not None:
        schema["description"] = description
    return schema


def positive_integer(*, default: int | None = None) -> dict[str, Any]:
    """The JSON schema of a config property holding a whole number of at least 1."""
    schema: dict[str, Any] = {"type": "integer", "minimum": 1}
    if default is not None:
        schema["default"] = default
    return schema


def get_path(props: Any, *path: str | int, default: Any = None) -> Any:
    """Read a nested property, returning ``default`` where any step is absent or null.

    Args:
        props: The resource props (or any nested mapping/sequence).
        *path: Keys and list indexes to follow.
        default: What to return when the path does not resolve.

    Returns:
        The value at ``path`` or ``default``.
    """
    node = props
    for step in path:
        if isinstance(step, int):
            if not is_sequence(node) or not -len(node) <= step < len(node):
                return default
            node = node[step]
        else:
            if not isinstance(node, Mapping) or step not in node:
                return default
            node = node[step]
        if node is None:
            return default
    return node


def is_sequence(value: Any) -> bool:
    """Whether ``value`` is a list-like property (strings are not)."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def as_list(value: Any) -> list[Any]:
    """A property that may be a scalar or a list, as a list (``None`` becomes empty)."""
    if value is None:
        return []
    if is_sequence(value):
        return list(value)
    return [value]


def as_document(value: Any) -> Mapping[str, Any] | None:
    """A JSON policy document given either as a string or as a mapping.

    Returns:
        The parsed document, or ``None`` when absent or not a JSON object.
    """
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return None


def stack_name(urn: str) -> str:
    """The stack segment of a URN (``urn:pulumi:<stack>::<project>::<type>::<name>``)."""
    head = urn.split("::", 1)[0]
    return head.rsplit(":", 1)[-1] if head.startswith("urn:pulumi:") else ""


def is_production(urn: str, config: Mapping[str, Any]) -> bool:
    """Whether the resource's stack counts as production.

    A stack is production when its own config says so (``syncbot:production``, which the
    engine hands the analyzer with the rest of the stack config) or when its name matches.

    Args:
        urn: The resource URN (carries the stack name).
        config: The policy's config; ``productionStacks`` lists names or glob patterns.
    """
    if str(get_config("syncbot:production") or "").strip().lower() in ("true", "1", "yes"):
        return True
    patterns = config.get("productionStacks") or DEFAULT_PRODUCTION_STACKS
    name = stack_name(urn)
    return any(fnmatch.fnmatchcase(name, str(pattern)) for pattern in patterns)


def looks_secret_name(name: str, allowed: Sequence[str] = ()) -> bool:
    """Whether an env var name promises a credential (contract secret or telling name).

    Args:
        name: The variable name.
        allowed: Names the pack config exempts.
    """
    if name in allowed:
        return False
    if name in SECRET_ENV:
        return True
    return bool(_SECRET_NAME.search(name)) and not _REFERENCE_SUFFIX.search(name)


def looks_secret_value(value: Any) -> bool:
    """Whether a literal value has the shape of a known credential format."""
    return isinstance(value, str) and bool(_SECRET_VALUE.search(value))


class _Unknown:
    """A value a preview cannot know yet (read with :func:`read_known`)."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()


def read_known(container: Any, key: str | int) -> Any:
    """``container[key]``, or :data:`UNKNOWN` where the analyzer's proxy says it is unknown.

    Rules that can judge without the value (a secret-named env var given as *any* literal is a
    leak; an unknown value cannot be a literal credential) read through this, so they keep
    judging during a preview instead of going blind.
    """
    try:
        return container[key]
    except UnknownValueError:
        return UNKNOWN
    except (KeyError, IndexError, TypeError):
        return None


def plaintext_secret(
    name: str, value: Any, allowed: Sequence[str] = ()
) -> Literal["name", "value"] | None:
    """Why a literal env value leaks a credential, for the env var rules of every provider.

    Args:
        name: The variable name.
        value: Its literal value (empty values leak nothing).
        allowed: Names the pack config exempts from the name heuristic.

    Returns:
        ``"name"`` when the name promises a credential, ``"value"`` when the value has a
        credential's shape, ``None`` otherwise.
    """
    if value is UNKNOWN:
        # Computed by the program (a resource output): a literal all the same, so a secret
        # name is still a leak; but it cannot be a credential someone typed in.
        return "name" if looks_secret_name(name, allowed) else None
    if value in (None, ""):
        return None
    if looks_secret_name(name, allowed):
        return "name"
    if looks_secret_value(value):
        return "value"
    return None


def is_companion(
    owner: PolicyResource, companion: PolicyResource, *, handles: Sequence[str], reference: str
) -> bool:
    """Whether a companion resource (pulumi-aws 7's per-setting resources) configures ``owner``.

    Args:
        owner: The resource configured (a bucket, a queue).
        companion: The candidate companion.
        handles: The owner's props the companion may name it by (its name, URL or id).
        reference: The companion's prop that names the owner.

    Returns:
        True when the companion depends on the owner or names one of its handles.
    """
    if any(dep.urn == owner.urn for dep in companion.dependencies):
        return True
    names = {get_path(owner.props, handle) for handle in handles} - {None}
    return get_path(companion.props, reference) in names


def iter_statements(document: Mapping[str, Any] | None) -> Iterator[Mapping[str, Any]]:
    """The statements of an IAM policy document (a single statement or a list)."""
    if document is None:
        return
    for statement in as_list(document.get("Statement")):
        if isinstance(statement, Mapping):
            yield statement
