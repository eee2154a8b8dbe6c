"""Secret Manager secrets, each readable only by the identities named for it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.gcp.env import SecretRef

ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"


def secret_id(prefix: str, key: str) -> str:
    """The Secret Manager id for a logical secret key (``TOKEN_ENCRYPTION_KEY`` and so on).

    Args:
        prefix: The deployment's resource prefix.
        key: Env var name or another logical key.

    Returns:
        A lowercase, dash-separated id valid for Secret Manager.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", f"{prefix}-{key}".lower()).strip("-")
    return slug[:255]


@dataclass
class SecretsArgs:
    """Inputs of :class:`Secrets`."""

    project: pulumi.Input[str]
    prefix: str
    values: Mapping[str, pulumi.Input[str]]
    """Secret values by logical key; each is stored as a Pulumi secret."""
    accessors: Sequence[pulumi.Input[str]] = field(default_factory=list)
    """IAM members (``serviceAccount:…``) granted access to each of these secrets."""
    protect: bool = False
    """Production: a destroy or rename fails instead of deleting the secrets."""


class Secrets(pulumi.ComponentResource):
    """One Secret Manager secret and version per value, with per-secret accessor bindings.

    Access is granted on each secret to the given members only; nothing here grants
    ``secretAccessor`` on the project, so another workload in the project reads none of them.
    """

    refs: dict[str, SecretRef]
    """Reference (id and pinned version) per logical key, for env vars and volumes."""
    secret_ids: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:Secrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.refs = {}
        self.secret_ids = {}
        for key, value in sorted(args.values.items()):
            role = key.lower().replace("_", "-")
            secret = gcp.secretmanager.Secret(
                f"{name}-{role}",
                project=args.project,
                secret_id=secret_id(args.prefix, key),
                replication={"auto": {}},
                labels={"app": "syncbot"},
                opts=pulumi.ResourceOptions(
                    parent=self, protect=args.protect, retain_on_delete=args.protect
                ),
            )
            version = gcp.secretmanager.SecretVersion(
                f"{name}-{role}-version",
                secret=secret.id,
                secret_data=pulumi.Output.secret(value),
                opts=child,
            )
            for index, member in enumerate(args.accessors):
                gcp.secretmanager.SecretIamMember(
                    f"{name}-{role}-accessor-{index}",
                    project=args.project,
                    secret_id=secret.secret_id,
                    role=ACCESSOR_ROLE,
                    member=member,
                    opts=child,
                )
            self.secret_ids[key] = secret.secret_id
            self.refs[key] = SecretRef(secret=secret.secret_id, version=version.version)
        self.register_outputs({"secret_ids": self.secret_ids})
