"""``DeliveryQueue``: the Cloud Tasks queue that drives deliveries on Cloud Run.

The database outbox stays the source of truth; a task only asks the service to run one
delivery lane (``POST /internal/deliver``) between requests. Tasks carry an OIDC token minted as
a dedicated invoker account, which the app verifies; the runtime account may enqueue on this
queue only and act as that invoker only. Queue path and invoker e-mail follow from fixed names
(:func:`queue_path`, :func:`infra.gcp.naming.account_email`), so the service's env is known
before either exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.gcp.naming import account_member

ENQUEUER_ROLE = "roles/cloudtasks.enqueuer"
ACT_AS_ROLE = "roles/iam.serviceAccountUser"
_QUEUE_ID_MAX = 100


def queue_path(project: str, region: str, queue_id: str) -> str:
    """The full Cloud Tasks queue name the app creates tasks in (``SYNCBOT_DELIVERY_QUEUE``).

    Args:
        project: The project id.
        region: The queue's location (the service's region).
        queue_id: The queue's short name.

    Returns:
        ``projects/<project>/locations/<region>/queues/<queue_id>``.
    """
    return f"projects/{project}/locations/{region}/queues/{queue_id}"


def delivery_queue_id(service_name: str) -> str:
    """The queue's short name for a service: letters, digits and hyphens, at most 100."""
    return f"{service_name[: _QUEUE_ID_MAX - len('-deliveries')]}-deliveries"


@dataclass
class DeliveryQueueArgs:
    """Inputs of :class:`DeliveryQueue`."""

    project: pulumi.Input[str]
    region: pulumi.Input[str]
    queue_id: str
    invoker_email: pulumi.Input[str]
    """The account Cloud Tasks signs OIDC tokens as (``SYNCBOT_DELIVERY_INVOKER``), created
    by the bootstrap stack with the runtime's ``serviceAccountUser`` on it."""
    enqueuer_member: pulumi.Input[str]
    """The runtime identity (``serviceAccount:…``) that creates tasks."""
    max_dispatches_per_second: float = 20.0
    max_concurrent_dispatches: int = 40
    max_attempts: int = 20
    """Attempts per task before Cloud Tasks drops it; the maintenance tick re-enqueues."""
    min_backoff: str = "1s"
    max_backoff: str = "300s"
    max_doublings: int = 5
    log_sampling_ratio: float = 0.1


class DeliveryQueue(pulumi.ComponentResource):
    """Cloud Tasks queue and the runtime's enqueue grant on it.

    ``roles/cloudtasks.enqueuer`` is bound on this queue, not on the project; the runtime's
    ``roles/iam.serviceAccountUser`` on the invoker account (creating a task with an OIDC token
    acts as that account) is the bootstrap stack's (:mod:`infra.gcp.workload_accounts`).
    The invoker's ``roles/run.invoker`` is bound on the service by
    :class:`infra.gcp.service.Service`.
    """

    queue_name: pulumi.Output[str]
    invoker_email: pulumi.Output[str]
    invoker_member: pulumi.Output[str]

    def __init__(
        self, name: str, args: DeliveryQueueArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:DeliveryQueue", name, None, opts)
        if args.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (unbounded retries are refused)")
        if not 0 <= args.log_sampling_ratio <= 1:
            raise ValueError("log_sampling_ratio is a fraction from 0 to 1")
        child = pulumi.ResourceOptions(parent=self)
        self.queue = gcp.cloudtasks.Queue(
            f"{name}-queue",
            project=args.project,
            location=args.region,
            name=args.queue_id,
            rate_limits={
                "max_dispatches_per_second": args.max_dispatches_per_second,
                "max_concurrent_dispatches": args.max_concurrent_dispatches,
            },
            retry_config={
                "max_attempts": args.max_attempts,
                "min_backoff": args.min_backoff,
                "max_backoff": args.max_backoff,
                "max_doublings": args.max_doublings,
            },
            stackdriver_logging_config={"sampling_ratio": args.log_sampling_ratio},
            opts=child,
        )
        self.enqueuer = gcp.cloudtasks.QueueIamMember(
            f"{name}-enqueuer",
            project=args.project,
            location=args.region,
            name=self.queue.name,
            role=ENQUEUER_ROLE,
            member=args.enqueuer_member,
            opts=child,
        )
        self.queue_name = pulumi.Output.concat(
            "projects/", args.project, "/locations/", args.region, "/queues/", self.queue.name
        )
        self.invoker_email = pulumi.Output.from_input(args.invoker_email)
        self.invoker_member = self.invoker_email.apply(account_member)
        self.register_outputs(
            {
                "queue_name": self.queue_name,
                "invoker_email": self.invoker_email,
                "invoker_member": self.invoker_member,
            }
        )
