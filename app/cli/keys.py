"""``syncbot rotate-key``: re-encrypt every stored secret under the current key."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.common import EXIT_FAILED, EXIT_OK, connect_or_exit, fail, settings_or_exit
from app.errors import CipherError, ConfigError
from app.rotation import rotate_all
from app.store.migrate import is_at_head


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "rotate-key",
        help="re-encrypt stored secrets under TOKEN_ENCRYPTION_KEY",
        description="Re-encrypt every encrypted column under the current TOKEN_ENCRYPTION_KEY "
        "in one transaction, decrypting old values with TOKEN_ENCRYPTION_PREVIOUS_KEYS. "
        "Idempotent: values already under the current key are left alone.",
    )
    parser.add_argument(
        "--wait-db",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="how long to wait for a cold database (default: 20)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The composition root imports every adapter: only commands that build a runtime
    # pay for that.
    from app.assembly import build_runtime

    settings = settings_or_exit()
    try:
        runtime = build_runtime(settings)
    except ConfigError as exc:
        fail("invalid configuration", exc.problems)
        return EXIT_FAILED
    try:
        connect_or_exit(settings, runtime.engine, wait=args.wait_db)
        if not is_at_head(runtime.engine):
            fail("schema is not at head", ["run `syncbot migrate` first"])
            return EXIT_FAILED
        try:
            counts = rotate_all(runtime.sessions, runtime.cipher)
        except CipherError as exc:
            fail(
                "rotation aborted, nothing changed",
                [str(exc), "add the key that encrypted it to TOKEN_ENCRYPTION_PREVIOUS_KEYS"],
            )
            return EXIT_FAILED
        for column, count in counts.items():
            print(f"{column}: {count} re-encrypted")
        print(
            f"total: {sum(counts.values())} value(s) now under key {runtime.cipher.current_key_id}"
        )
        return EXIT_OK
    finally:
        runtime.close()
