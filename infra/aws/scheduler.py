"""``Scheduler``: EventBridge Scheduler invoking the function's maintenance tick."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.iam import allow, policy, service_trust_policy
from infra.contract import LAMBDA_TASK_KEY, SCHEDULE_MINUTES, TASK_TICK


@dataclass
class SchedulerArgs:
    """Inputs of :class:`Scheduler`."""

    function_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    minutes: int = SCHEDULE_MINUTES


class Scheduler(pulumi.ComponentResource):
    """Every few minutes: keep-warm, outbox drain and purges, via ``{"syncbot_task": "tick"}``."""

    schedule_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: SchedulerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:aws:Scheduler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role",
            description="EventBridge Scheduler: invoke the syncbot tick",
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: json.dumps(
                    service_trust_policy("scheduler.amazonaws.com", source_account=account)
                )
            ),
            opts=child,
        )
        self.role_policy = aws.iam.RolePolicy(
            f"{name}-invoke",
            role=self.role.id,
            policy=pulumi.Output.from_input(args.function_arn).apply(
                lambda arn: json.dumps(policy(allow(["lambda:InvokeFunction"], [arn])))
            ),
            opts=child,
        )
        unit = "minute" if args.minutes == 1 else "minutes"
        self.schedule = aws.scheduler.Schedule(
            f"{name}-tick",
            description="syncbot maintenance tick",
            schedule_expression=f"rate({args.minutes} {unit})",
            flexible_time_window={"mode": "OFF"},
            target={
                "arn": args.function_arn,
                "role_arn": self.role.arn,
                "input": json.dumps({LAMBDA_TASK_KEY: TASK_TICK}),
                # A missed tick is caught up by the next one; retries would only pile up.
                "retry_policy": {"maximum_retry_attempts": 0, "maximum_event_age_in_seconds": 60},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy]),
        )
        self.schedule_arn = self.schedule.arn
        self.register_outputs({"schedule_arn": self.schedule_arn})
