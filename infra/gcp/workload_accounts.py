"""The service accounts a deployment's workloads run as, created once by the bootstrap stack.

Creating, deleting and granting on service accounts is project administration; CI's deploy
account does none of it. It may only *act as* these three accounts (``serviceAccountUser`` on
each one, never on the project), which deploying a Cloud Run service, job or scheduler job as
them requires.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.gcp.naming import WORKLOAD_ROLES, account_id, account_member

_DISPLAY = {
    "run": "syncbot runtime (service and migration job)",
    "sched": "syncbot scheduler (keep-warm and maintenance tick)",
    "tasks": "syncbot delivery tasks (OIDC invoker)",
}


@dataclass
class WorkloadAccountsArgs:
    """Inputs of :class:`WorkloadAccounts`."""

    project: pulumi.Input[str]
    prefix: str
    """The deployment's name prefix; the app stack derives the same e-mails from it."""


class WorkloadAccounts(pulumi.ComponentResource):
    """The runtime, scheduler and delivery-invoker accounts, and the one grant between them.

    The runtime creates delivery tasks carrying an OIDC token of the invoker account, which
    Cloud Tasks checks as ``iam.serviceAccounts.actAs``: the runtime gets that on the invoker
    account alone.
    """

    accounts: dict[str, gcp.serviceaccount.Account]
    """By role: ``run``, ``sched``, ``tasks``."""

    def __init__(
        self, name: str, args: WorkloadAccountsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:WorkloadAccounts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.accounts = {
            role: gcp.serviceaccount.Account(
                f"{name}-{role}",
                project=args.project,
                account_id=account_id(args.prefix, role),
                display_name=_DISPLAY[role],
                opts=child,
            )
            for role in WORKLOAD_ROLES
        }
        gcp.serviceaccount.IAMMember(
            f"{name}-run-acts-as-tasks",
            service_account_id=self.accounts["tasks"].name,
            role="roles/iam.serviceAccountUser",
            member=self.accounts["run"].email.apply(account_member),
            opts=child,
        )
        self.register_outputs({role: a.email for role, a in self.accounts.items()})
