"""``Secrets``: one Secrets Manager secret per secret contract variable the stack supplies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.contract import ENV_BY_NAME, SECRET_ENV

TOKEN_KEY_LENGTH = 48


@dataclass
class SecretsArgs:
    """Inputs of :class:`Secrets`."""

    values: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Secret contract variables by env name; pass Pulumi secrets."""
    generate_token_key: bool = True
    """Generate ``TOKEN_ENCRYPTION_KEY`` when ``values`` lacks it."""
    recovery_window_days: int = 7
    """How long a deleted secret stays recoverable (0 deletes at once: dev only)."""
    protect: bool = False
    """Production: a destroy or rename fails instead of deleting the secrets and the key."""


class Secrets(pulumi.ComponentResource):
    """Stores each secret value; the function reads them by ARN at cold start."""

    arns: pulumi.Output[dict[str, str]]
    """Env name to secret ARN."""

    def __init__(
        self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:aws:Secrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Losing TOKEN_ENCRYPTION_KEY makes every stored token unreadable: keep it and the
        # secrets through a destroy or a rename in production.
        keep = pulumi.ResourceOptions(
            parent=self, protect=args.protect, retain_on_delete=args.protect
        )
        unknown = sorted(set(args.values) - SECRET_ENV)
        if unknown:
            raise ValueError(f"not secret contract variables: {', '.join(unknown)}")
        values = dict(args.values)
        if args.generate_token_key and "TOKEN_ENCRYPTION_KEY" not in values:
            # Back this value up: losing it makes every stored workspace token unreadable.
            self.token_key = random.RandomPassword(
                f"{name}-token-key", length=TOKEN_KEY_LENGTH, special=False, opts=keep
            )
            values["TOKEN_ENCRYPTION_KEY"] = self.token_key.result
        self.secrets: dict[str, aws.secretsmanager.Secret] = {}
        for env_name in sorted(values):
            slug = env_name.lower().replace("_", "-")
            secret = aws.secretsmanager.Secret(
                f"{name}-{slug}",
                description=f"syncbot {env_name}: {ENV_BY_NAME[env_name].description}",
                recovery_window_in_days=args.recovery_window_days,
                opts=keep,
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-{slug}-value",
                secret_id=secret.id,
                secret_string=pulumi.Output.secret(values[env_name]),
                opts=child,
            )
            self.secrets[env_name] = secret
        self.arns = pulumi.Output.all(
            **{env_name: secret.arn for env_name, secret in self.secrets.items()}
        )
        self.register_outputs({"arns": self.arns})
