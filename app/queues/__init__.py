"""The clouds' own queues as the outbox's dispatchers (see :mod:`app.core.dispatch`)."""

from __future__ import annotations

from app.core.dispatch import InProcessNotifier, Notifier
from app.core.outbox import Outbox
from app.settings import Settings


def build_notifier(settings: Settings, outbox: Outbox) -> Notifier:
    """The notifier of this runtime shape, as ``SYNCBOT_DISPATCH`` names it."""
    if settings.dispatch == "sqs":
        from app.queues.sqs import SqsNotifier

        return SqsNotifier(str(settings.delivery_queue))
    if settings.dispatch == "cloud_tasks":
        from app.queues.cloud_tasks import CloudTasksNotifier, delivery_url

        return CloudTasksNotifier(
            queue=str(settings.delivery_queue),
            invoker=str(settings.delivery_invoker),
            url=delivery_url(str(settings.public_url)),
            audience=str(settings.public_url),
        )
    return InProcessNotifier(outbox)
