"""Render the contract's runtime environment as Cloud Run container env entries.

Pure functions over :data:`infra.contract.RUNTIME_ENV`: the service and the migration job take
their env from here, so both run with the same configuration and every contract variable is
handled by exactly one rule per :class:`~infra.contract.Source`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.cloud_env import FORCED, DatabaseEnv
from infra.contract import ENV_BY_NAME, RUNTIME_ENV, Source

# Cloud Run deployments drive deliveries through the stack's Cloud Tasks queue.
DISPATCH = "cloud_tasks"


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A Secret Manager secret version that an env var reads by reference."""

    secret: pulumi.Input[str]
    """The secret's id (``secret_id``) in the same project."""
    version: pulumi.Input[str]
    """The version to pin; a new version rolls out a new revision."""


@dataclass(frozen=True, slots=True)
class DeliveryEnv:
    """The ``Source.DISPATCH`` values: where tasks go and whose OIDC token they carry."""

    queue: pulumi.Input[str]
    """Full queue name ``projects/P/locations/L/queues/Q``."""
    invoker: pulumi.Input[str]
    """E-mail of the service account Cloud Tasks signs the tasks' OIDC tokens as."""


def container_env(
    *,
    config: Mapping[str, str],
    secrets: Mapping[str, SecretRef],
    database: DatabaseEnv | None,
    public_url: pulumi.Input[str],
    scheduler_account: pulumi.Input[str] | None = None,
    delivery: DeliveryEnv | None = None,
) -> list[dict[str, Any]]:
    """Build the ``envs`` list of a Cloud Run container from the contract table.

    Args:
        config: Plain values for ``Source.CONFIG`` variables; unset ones fall back to the
            contract default or are left out so the app's own default applies.
        secrets: Secret references by env var name, for the ``Source.SECRET`` variables the
            stack provides; secrets without a reference are left out (they are optional).
        database: Connection values for the ``Source.DATABASE`` variables, or ``None`` when
            the app connects by ``DATABASE_URL`` (an existing server), which must then be
            among ``secrets``.
        public_url: The service's public base URL (``SYNCBOT_PUBLIC_URL``).
        scheduler_account: The e-mail of the scheduler's service account, the one caller whose
            OIDC token the app accepts on ``POST /internal/tick`` (``Source.SCHEDULER``).
        delivery: The Cloud Tasks queue and invoker (``Source.DISPATCH``); without it the
            dispatch variables are left out and the app's in-process default applies.

    Returns:
        One ``{"name", "value"}`` or ``{"name", "value_source"}`` dict per wired variable, in
        contract order. ``PORT`` is never set: Cloud Run injects it and rejects it as an env var.

    Raises:
        ValueError: On a name outside the contract, a secret passed as plain config, a plain
            value passed as a secret, or an attempt to override a forced cloud setting.
    """
    _check_names(config, secrets)
    if database is None and "DATABASE_URL" not in secrets:
        raise ValueError("without a managed database the app needs DATABASE_URL")
    database_values = database.variables() if database is not None else {}
    dispatch_values: dict[str, pulumi.Input[str]] = (
        {
            "SYNCBOT_DISPATCH": DISPATCH,
            "SYNCBOT_DELIVERY_QUEUE": delivery.queue,
            "SYNCBOT_DELIVERY_INVOKER": delivery.invoker,
        }
        if delivery is not None
        else {}
    )
    envs: list[dict[str, Any]] = []
    for var in RUNTIME_ENV:
        match var.source:
            case Source.CONFIG:
                value = FORCED.get(var.name, config.get(var.name, var.default))
                if value is not None:
                    envs.append({"name": var.name, "value": value})
            case Source.SECRET:
                ref = secrets.get(var.name)
                if ref is not None:
                    envs.append({"name": var.name, "value_source": _secret_source(ref)})
            case Source.DATABASE if database is None:
                continue  # DATABASE_URL carries the connection
            case Source.DATABASE:
                if var.name not in database_values:
                    raise ValueError(f"no database value for {var.name}")
                envs.append({"name": var.name, "value": database_values[var.name]})
            case Source.SERVICE:
                envs.append({"name": var.name, "value": public_url})
            case Source.SCHEDULER:
                if scheduler_account is not None:
                    envs.append({"name": var.name, "value": scheduler_account})
            case Source.DISPATCH:
                value = dispatch_values.get(var.name)
                if value is not None:
                    envs.append({"name": var.name, "value": value})
            case Source.RUNTIME:
                continue
            case _:  # pragma: no cover - a new Source must get a rule here first
                raise ValueError(f"no Cloud Run rule for {var.name} ({var.source})")
    return envs


def _secret_source(ref: SecretRef) -> dict[str, Any]:
    return {"secret_key_ref": {"secret": ref.secret, "version": ref.version}}


def _check_names(config: Mapping[str, str], secrets: Mapping[str, SecretRef]) -> None:
    for name in config:
        var = ENV_BY_NAME.get(name)
        if var is None:
            raise ValueError(f"{name} is not a contract variable")
        if var.source is not Source.CONFIG:
            raise ValueError(f"{name} is {var.source.value}-sourced, not plain config")
        if name in FORCED and config[name].strip().lower() != FORCED[name]:
            raise ValueError(f"{name} must be {FORCED[name]} on Cloud Run")
    for name in secrets:
        var = ENV_BY_NAME.get(name)
        if var is None or not var.secret:
            raise ValueError(f"{name} is not a secret contract variable")
