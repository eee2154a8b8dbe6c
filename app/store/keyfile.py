"""The token encryption key: the configured one, or a generated local development key.

Both the token cipher (built by the composition root) and the backup MAC key derive from it,
so it lives with the store rather than with the runtime that assembles them.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from app.errors import ConfigError
from app.settings import KEY_HINT, Settings

log = logging.getLogger("syncbot.store.keyfile")

DEV_KEY_FILE = ".syncbot-dev-key"


def token_key(settings: Settings) -> str:
    """The token encryption key: the configured one, or a local development key.

    In local development without ``TOKEN_ENCRYPTION_KEY`` a random key is generated once into
    ``<SYNCBOT_DATA_DIR>/.syncbot-dev-key`` (mode 0600) and reused, so tokens stored by one run
    still decrypt in the next. Secrets are never stored unencrypted. The embedded database's
    own development key is also read (never made) without ``LOCAL_DEVELOPMENT``, so the
    ``syncbot`` command works from a plain shell on the database ``make run`` created.

    Raises:
        ConfigError: no key outside local development.
    """
    if settings.token_encryption_key:
        return settings.token_encryption_key
    path = Path(settings.data_dir) / DEV_KEY_FILE
    if (settings.local_development or settings.embedded_database) and path.is_file():
        return path.read_text().strip()
    if not settings.local_development:
        raise ConfigError(
            [
                f"TOKEN_ENCRYPTION_KEY is not set: {KEY_HINT} "
                "(or set LOCAL_DEVELOPMENT=true to use a generated development key)"
            ]
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    log.warning(
        "TOKEN_ENCRYPTION_KEY not set: generated a local development key",
        extra={"path": str(path)},
    )
    return key
