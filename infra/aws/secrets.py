"""``Secrets``: one Secrets Manager secret per secret contract variable the stack supplies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.contract import ENV_BY_NAME, GENERATED_SECRET_NAMES, GENERATED_SECRETS, SECRET_ENV


@dataclass
class SecretsArgs:
    """Inputs of :class:`Secrets`."""

    values: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Secret contract variables by env name; pass Pulumi secrets."""
    generate_token_key: bool = True
    """Generate ``TOKEN_ENCRYPTION_KEY`` and ``SYNCBOT_METRICS_TOKEN`` when ``values`` lacks
    them (:data:`infra.contract.GENERATED_SECRETS`)."""
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
        if args.generate_token_key:
            # Back the token key up: losing it makes every stored workspace token unreadable.
            for env_name, length in GENERATED_SECRETS.items():
                if env_name not in values:
                    generated = random.RandomPassword(
                        f"{name}-{GENERATED_SECRET_NAMES[env_name]}",
                        length=length,
                        special=False,
                        opts=keep,
                    )
                    values[env_name] = generated.result
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
