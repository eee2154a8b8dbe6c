"""``Migrations``: upgrade the schema once per new bundle, as a deploy step."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.contract import LAMBDA_TASK_KEY, TASK_MIGRATE


@dataclass
class MigrationsArgs:
    """Inputs of :class:`Migrations`."""

    function: aws.lambda_.Function
    """Published on every change: the migration runs the new version, before it is live."""
    bundle_sha256: str
    """A new bundle (and only a new bundle) runs the migration again."""


class Migrations(pulumi.ComponentResource):
    """Invokes ``{"syncbot_task": "migrate"}`` on the newly published version.

    Cold starts never migrate (``SYNCBOT_AUTO_MIGRATE=false``); a failed migration fails the
    deploy before the ``live`` alias moves, so a broken schema change never goes live and the
    old version keeps serving.
    """

    result: pulumi.Output[str]

    def __init__(
        self, name: str, args: MigrationsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:aws:Migrations", name, None, opts)
        self.invocation = aws.lambda_.Invocation(
            f"{name}-run",
            function_name=args.function.name,
            qualifier=args.function.version,
            input=json.dumps({LAMBDA_TASK_KEY: TASK_MIGRATE}),
            triggers={"bundle": args.bundle_sha256},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.function]),
        )
        self.result = self.invocation.result
        self.register_outputs({"result": self.result})
