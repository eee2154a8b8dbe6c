"""Render the contract's runtime environment as Lambda environment variables.

Pure over :data:`infra.contract.RUNTIME_ENV`, one rule per :class:`~infra.contract.Source`.
Secret variables never become values here: they are listed in ``SYNCBOT_SECRET_ARNS`` (env
name to Secrets Manager ARN), which the Lambda entry resolves at cold start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi

from infra.cloud_env import FORCED, DatabaseEnv
from infra.contract import AWS_SECRET_ARNS_ENV, ENV_BY_NAME, RUNTIME_ENV, Source

# The dispatcher a Lambda deployment runs: nothing runs between invocations, so deliveries
# are driven by the stack's SQS FIFO queue through an event source mapping.
DISPATCH = "sqs"


def lambda_env(
    *,
    backend: str,
    config: Mapping[str, str],
    secret_arns: Mapping[str, pulumi.Input[str]],
    database: DatabaseEnv | None,
    public_url: pulumi.Input[str],
    delivery_queue_url: pulumi.Input[str] | None = None,
    database_ca_path: str | None = None,
) -> dict[str, pulumi.Input[str]]:
    """Builds the function's environment variables from the contract table.

    Args:
        backend: ``DATABASE_BACKEND``.
        config: Plain values for ``Source.CONFIG`` variables; unset ones fall back to the
            contract default or are left out so the app's default applies.
        secret_arns: Secret ARNs by env name (a ``#key`` suffix selects a JSON field).
        database: Connection values, or ``None`` when ``DATABASE_URL`` is among the secrets.
        public_url: ``SYNCBOT_PUBLIC_URL``.
        delivery_queue_url: The SQS delivery queue's URL (``Source.DISPATCH``): with it the app
            dispatches through SQS (``SYNCBOT_DISPATCH=sqs``); without it the dispatch variables
            are left out and the app's in-process default applies.
        database_ca_path: Where the function finds the RDS CAs (``DATABASE_SSL_CA_PATH``);
            the system trust store of the Lambda runtime does not have them.

    Returns:
        Variable name to value; never a secret value.

    Raises:
        ValueError: On a name outside the contract, a secret passed as config or a plain
            variable passed as a secret, or a missing database.
    """
    for name in config:
        var = ENV_BY_NAME.get(name)
        if var is None or var.source is not Source.CONFIG:
            raise ValueError(f"{name} is not a plain contract setting")
    for name in secret_arns:
        var = ENV_BY_NAME.get(name)
        if var is None or not var.secret:
            raise ValueError(f"{name} is not a secret contract variable")
    if database is None and "DATABASE_URL" not in secret_arns:
        raise ValueError("without a managed database the app needs DATABASE_URL")
    database_values = database.variables() if database is not None else {}
    # SYNCBOT_DELIVERY_INVOKER is Cloud Tasks' OIDC identity; an SQS trigger needs none.
    dispatch_values: dict[str, pulumi.Input[str]] = (
        {"SYNCBOT_DISPATCH": DISPATCH, "SYNCBOT_DELIVERY_QUEUE": delivery_queue_url}
        if delivery_queue_url is not None
        else {}
    )
    forced = {**FORCED, "DATABASE_BACKEND": backend}
    if database is not None:
        forced["DATABASE_TLS_ENABLED"] = "true"
        if database_ca_path is not None:
            forced["DATABASE_SSL_CA_PATH"] = database_ca_path
    env: dict[str, pulumi.Input[str]] = {}
    for var in RUNTIME_ENV:
        match var.source:
            case Source.CONFIG:
                value = forced.get(var.name, config.get(var.name, var.default))
                if value is not None:
                    env[var.name] = value
            case Source.DATABASE:
                if database is not None:
                    env[var.name] = database_values[var.name]
            case Source.SERVICE:
                env[var.name] = public_url
            case Source.DISPATCH:
                if var.name in dispatch_values:
                    env[var.name] = dispatch_values[var.name]
            case Source.SECRET | Source.RUNTIME | Source.SCHEDULER:
                # Secrets by ARN below; PORT means nothing to a Lambda, and its tick is a
                # direct invocation, not an HTTP call that needs an OIDC caller list.
                continue
            case _:  # pragma: no cover - a new Source must get a rule here first
                raise ValueError(f"no Lambda rule for {var.name} ({var.source})")
    env[AWS_SECRET_ARNS_ENV] = pulumi.Output.all(**dict(secret_arns)).apply(
        lambda arns: json.dumps(arns, sort_keys=True)
    )
    return env
