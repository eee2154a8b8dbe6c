"""Which parts of syncbot run in this process, and why: the line ``syncbot serve`` starts with.

Nothing is switched on or off here; this only reads the settings (and the number of Socket Mode
workspaces) the way the assembly does, so an operator sees at once that, say, Slack events are
not served because ``SLACK_SIGNING_SECRET`` is unset.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.settings import Settings

MATRIX_VARS = (
    ("MATRIX_HOMESERVER_URL", "matrix_homeserver_url"),
    ("MATRIX_SERVER_NAME", "matrix_server_name"),
    ("MATRIX_AS_TOKEN", "matrix_as_token"),
    ("MATRIX_HS_TOKEN", "matrix_hs_token"),
)


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    on: bool
    why: str

    def __str__(self) -> str:
        return f"{self.name} {'on' if self.on else 'off'} ({self.why})"


def _unset(settings: Settings, pairs: tuple[tuple[str, str], ...]) -> list[str]:
    return [env for env, attr in pairs if not getattr(settings, attr)]


def parts(settings: Settings, *, socket_workspaces: int | None = None) -> list[Part]:
    """Every part with whether it runs and the reason.

    Args:
        settings: the process's settings.
        socket_workspaces: workspaces with an app token (``None``: this process runs no
            Socket Mode worker, as on Lambda).
    """
    found: list[Part] = []
    if settings.slack_signing_secret:
        found.append(Part("slack-events", True, "POST /slack/events, SLACK_SIGNING_SECRET set"))
    else:
        found.append(Part("slack-events", False, "SLACK_SIGNING_SECRET not set: Socket Mode only"))
    oauth_missing = _unset(
        settings,
        (("SLACK_CLIENT_ID", "slack_client_id"), ("SLACK_CLIENT_SECRET", "slack_client_secret")),
    )
    if not oauth_missing:
        found.append(Part("slack-oauth", True, "GET /slack/install"))
    else:
        found.append(
            Part(
                "slack-oauth",
                False,
                f"{' and '.join(oauth_missing)} not set: install with `syncbot workspace add`",
            )
        )
    if socket_workspaces is None:
        found.append(Part("socket-mode", False, "no long-running worker in this process"))
    elif socket_workspaces:
        found.append(
            Part("socket-mode", True, f"{socket_workspaces} workspace(s) with an app token")
        )
    else:
        found.append(
            Part("socket-mode", False, "no workspace has an app token (workspace add --app-token)")
        )
    matrix_missing = _unset(settings, MATRIX_VARS)
    if not matrix_missing:
        found.append(Part("matrix", True, f"appservice for {settings.matrix_server_name}"))
    else:
        found.append(Part("matrix", False, f"{', '.join(matrix_missing)} not set"))
    if settings.federation_enabled:
        found.append(Part("federation", True, f"as {settings.public_url}"))
    else:
        found.append(Part("federation", False, "SYNCBOT_FEDERATION_ENABLED is not true"))
    dispatch = {
        "inprocess": "this process's outbox worker",
        "sqs": f"SQS queue {settings.delivery_queue}",
        "cloud_tasks": f"Cloud Tasks queue {settings.delivery_queue}",
    }[settings.dispatch]
    found.append(Part("dispatch", True, f"{settings.dispatch}: {dispatch}"))
    if settings.metrics_token:
        found.append(Part("metrics", True, "GET /metrics with SYNCBOT_METRICS_TOKEN"))
    elif settings.local_development:
        found.append(Part("metrics", True, "GET /metrics open: LOCAL_DEVELOPMENT"))
    else:
        found.append(Part("metrics", False, "SYNCBOT_METRICS_TOKEN not set"))
    return found


def summary(found: list[Part]) -> str:
    """One line naming every part: ``parts: slack-events on (...); matrix off (...); ...``."""
    return "parts: " + "; ".join(str(part) for part in found)
