"""What the ``syncbot`` command says about an error a command let through: what went wrong and
what to do about it, never a traceback. Commands that know better say it themselves first."""

from __future__ import annotations

import aiohttp

from app.cli.common import EXIT_CONFIG, EXIT_FAILED, fail
from app.errors import (
    CipherError,
    ConfigError,
    FederationError,
    RemoteError,
    StoreError,
    SyncbotError,
)

CHECK_HINT = "run `syncbot check` to see every problem with the configuration and the database"


def remote_problem(exc: RemoteError) -> tuple[str, str]:
    """(title, fix) for a failed call to Slack, a homeserver or a peer.

    A call that never reached the remote (unknown host, refused connection) is not the
    remote refusing us: the fix for the first is the network or the URL setting, for the
    second the credentials.
    """
    cause = exc.__cause__
    url_setting = {
        "slack": "SLACK_API_URL",
        "matrix": "MATRIX_HOMESERVER_URL",
    }.get(exc.network, "the peer's URL")
    if isinstance(cause, aiohttp.ClientConnectorDNSError):
        return (
            f"cannot resolve the {exc.network} server's host name ({exc})",
            f"check the machine's DNS and network, and {url_setting}; then try again",
        )
    if isinstance(cause, aiohttp.ClientError | TimeoutError) or (
        exc.status is None and exc.code is None
    ):
        return (
            f"cannot reach the {exc.network} server ({exc})",
            f"check the network and {url_setting}; then try again",
        )
    if exc.retryable:
        return (
            f"{exc.network} could not answer now ({exc})",
            "try again in a minute",
        )
    return (f"{exc.network} refused the request ({exc})", _refusal_fix(exc))


def _refusal_fix(exc: RemoteError) -> str:
    code = exc.code or ""
    if code in {"invalid_auth", "not_authed", "token_revoked", "account_inactive"}:
        return "the token is not valid (revoked, mistyped or of another app): use a current one"
    if code == "channel_not_found":
        return "check the channel id and that the bot can see the channel (invite it)"
    if code in {"missing_scope", "not_allowed_token_type"}:
        return "reinstall the Slack app with the scopes of `syncbot manifest`"
    return "read the error above; `syncbot check` verifies the configuration"


def describe_error(exc: SyncbotError) -> tuple[str, list[str]]:
    """(title, lines) for any syncbot error, the last line saying how to fix it."""
    if isinstance(exc, ConfigError):
        return "invalid configuration", list(exc.problems)
    if isinstance(exc, RemoteError):
        title, fix = remote_problem(exc)
        return title, [fix]
    if isinstance(exc, StoreError):
        return (
            f"database problem: {exc}",
            [
                "check DATABASE_URL (or DATABASE_HOST/USER/PASSWORD) and that the server runs; "
                + CHECK_HINT
            ],
        )
    if isinstance(exc, CipherError):
        return (
            f"cannot decrypt a stored secret: {exc}",
            [
                "set TOKEN_ENCRYPTION_KEY to the key the secrets were stored with, or add it to "
                "TOKEN_ENCRYPTION_PREVIOUS_KEYS and run `syncbot rotate-key`"
            ],
        )
    if isinstance(exc, FederationError):
        return f"federation: {exc}", ["see `syncbot peer --help`; " + CHECK_HINT]
    # Errors raised for a user (SyncAdminError, BackupError, ...) carry their own fix.
    return str(exc), [CHECK_HINT]


def report_error(exc: SyncbotError) -> int:
    """Print ``exc`` for a person and return the command's exit code."""
    title, lines = describe_error(exc)
    fail(title, lines)
    return EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_FAILED
