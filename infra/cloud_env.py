"""What the runtime environment of every cloud deployment shares, whichever the provider.

:mod:`infra.aws.env` renders the contract for Lambda and :mod:`infra.gcp.env` for Cloud Run;
both force the same settings and take the database connection from the same four values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

# Values a cloud deployment must never run with, whatever the stack config says.
FORCED: Mapping[str, str] = {
    "LOCAL_DEVELOPMENT": "false",
    # Migrations run once per bundle or image as a deploy step, never at a cold start.
    "SYNCBOT_AUTO_MIGRATE": "false",
}


@dataclass(frozen=True, slots=True)
class DatabaseEnv:
    """The ``Source.DATABASE`` values, taken from the Database component."""

    host: pulumi.Input[str]
    port: pulumi.Input[str]
    user: pulumi.Input[str]
    schema: pulumi.Input[str]

    def variables(self) -> dict[str, pulumi.Input[str]]:
        """The values by contract variable name."""
        return {
            "DATABASE_HOST": self.host,
            "DATABASE_PORT": self.port,
            "DATABASE_USER": self.user,
            "DATABASE_SCHEMA": self.schema,
        }
