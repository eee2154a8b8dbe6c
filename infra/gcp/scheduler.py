"""Cloud Scheduler jobs: keep-warm on ``/health`` and the maintenance tick."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.contract import HEALTH_PATH, MAINTENANCE_PATH, SCHEDULE_MINUTES
from infra.gcp.naming import account_member


@dataclass
class SchedulerArgs:
    """Inputs of :class:`Scheduler`."""

    project: pulumi.Input[str]
    region: pulumi.Input[str]
    service_name: pulumi.Input[str]
    service_url: pulumi.Input[str]
    """The app's ``SYNCBOT_PUBLIC_URL``: the jobs' target base and the OIDC audience the app
    checks on the tick (never the service's hash-style ``uri``)."""
    account_email: pulumi.Input[str]
    """The scheduler's service account (created by the bootstrap stack)."""
    minutes: int = SCHEDULE_MINUTES


class Scheduler(pulumi.ComponentResource):
    """Two HTTP jobs calling the service with an OIDC token of a dedicated service account.

    The account can invoke this one service and nothing else; its token's audience is the
    service URL, so the app can tell a scheduler tick from anyone else's request.
    """

    service_account_email: pulumi.Output[str]

    def __init__(
        self, name: str, args: SchedulerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:Scheduler", name, None, opts)
        if not 1 <= args.minutes <= 59:
            raise ValueError("the schedule interval must be 1 to 59 minutes")
        child = pulumi.ResourceOptions(parent=self)
        email = pulumi.Output.from_input(args.account_email)
        gcp.cloudrunv2.ServiceIamMember(
            f"{name}-invoker",
            project=args.project,
            location=args.region,
            name=args.service_name,
            role="roles/run.invoker",
            member=email.apply(account_member),
            opts=child,
        )
        base = pulumi.Output.from_input(args.service_url).apply(lambda url: url.rstrip("/"))
        oidc = {"service_account_email": email, "audience": base}
        for role, method, path in (
            ("keep-warm", "GET", HEALTH_PATH),
            ("tick", "POST", MAINTENANCE_PATH),
        ):
            gcp.cloudscheduler.Job(
                f"{name}-{role}",
                project=args.project,
                region=args.region,
                description=f"syncbot {role}: {method} {path}",
                schedule=f"*/{args.minutes} * * * *",
                time_zone="Etc/UTC",
                attempt_deadline="60s",
                retry_config={"retry_count": 1},
                http_target={
                    "uri": pulumi.Output.concat(base, path),
                    "http_method": method,
                    "oidc_token": oidc,
                },
                opts=child,
            )
        self.service_account_email = email
        self.register_outputs({"service_account_email": self.service_account_email})
