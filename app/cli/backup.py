"""``syncbot backup FILE``, ``syncbot restore FILE`` and ``syncbot reset-db --yes``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from app.cli.admin_common import admin_runtime
from app.cli.common import EXIT_FAILED, EXIT_OK, fail, settings_or_exit
from app.store.backup import (
    BackupError,
    BackupSummary,
    backup_mac_key,
    reset_database,
    restore_backup,
    write_backup,
)


def register(sub: Any) -> None:
    backup = sub.add_parser(
        "backup",
        help="write an authenticated backup of the whole database",
        description="Write every table to FILE (or '-' for stdout). Secrets stay encrypted; the "
        "file is authenticated with a key derived from TOKEN_ENCRYPTION_KEY and restores only "
        "where that key is configured. The file holds user e-mails: keep it private.",
    )
    backup.add_argument("file", metavar="FILE", help="where to write the backup ('-': stdout)")
    backup.set_defaults(func=run_backup)
    restore = sub.add_parser(
        "restore",
        help="replace every row of the database with a backup's",
        description="Check FILE (authentication, schema revision, that every secret decrypts), "
        "then replace every row of every table with the backup's in one transaction. Stop "
        "`syncbot serve` first: rows written meanwhile are lost.",
    )
    restore.add_argument("file", metavar="FILE", help="a file written by `syncbot backup`")
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    restore.set_defaults(func=run_restore)
    reset = sub.add_parser(
        "reset-db",
        help="delete every row of every table (needs ENABLE_DB_RESET=true)",
        description="Delete every row of every table in one transaction; the schema stays. "
        "Every workspace must install the app again. Refused unless ENABLE_DB_RESET is true.",
    )
    reset.add_argument("--yes", action="store_true", help="confirm that every row goes")
    reset.set_defaults(func=run_reset)


class ProgressBar:
    """A one-line text progress bar, drawn only on a terminal."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self._label = label
        self._stream = stream or sys.stderr
        self._width = width
        self._shown = -1
        self.enabled = self._stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        if percent == self._shown:
            return
        self._shown = percent
        filled = self._width * percent // 100
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {percent:3d}% {done}/{total} rows")
        self._stream.flush()

    def finish(self) -> None:
        if self.enabled and self._shown >= 0:
            self._stream.write("\n")
            self._stream.flush()


def _describe(summary: BackupSummary) -> str:
    return (
        f"{summary.total_rows} row(s) in {len(summary.tables)} tables, "
        f"schema {summary.schema_revision}, key {summary.key_id}"
    )


def run_backup(args: argparse.Namespace) -> int:
    with admin_runtime() as runtime:
        mac_key = backup_mac_key(runtime.settings)
        bar = ProgressBar("backup")
        try:
            if args.file == "-":
                summary = write_backup(
                    runtime.engine, sys.stdout.buffer, mac_key=mac_key, progress=bar
                )
                sys.stdout.buffer.flush()
            else:
                summary = _write_file(Path(args.file), runtime.engine, mac_key, bar)
        except (BackupError, OSError) as exc:
            bar.finish()
            fail("backup failed", [str(exc)])
            return EXIT_FAILED
        bar.finish()
    print(f"backup written: {_describe(summary)}", file=sys.stderr)
    return EXIT_OK


def _write_file(path: Path, engine: Any, mac_key: bytes, bar: ProgressBar) -> BackupSummary:
    # Written aside and renamed, so a failed backup never leaves a file that looks complete;
    # mode 0600 because the file holds user e-mails and (encrypted) tokens.
    directory = path.resolve().parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            summary = write_backup(engine, out, mac_key=mac_key, progress=bar)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return summary


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    print(f"{question} Type 'yes' to continue: ", end="", file=sys.stderr, flush=True)
    try:
        return input().strip().lower() == "yes"
    except EOFError:
        return False


def run_restore(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        fail("cannot restore", [f"{path}: no such file"])
        return EXIT_FAILED
    with admin_runtime() as runtime:
        database = runtime.engine.url.render_as_string(hide_password=True)
        if not args.yes and not _confirm(
            f"This replaces EVERY row of {database} with the backup {path}."
        ):
            fail("restore cancelled", ["nothing was changed (pass --yes to skip the question)"])
            return EXIT_FAILED
        bar = ProgressBar("restore")
        try:
            with path.open("rb") as inp:
                summary = restore_backup(
                    runtime.engine,
                    inp,
                    mac_key=backup_mac_key(runtime.settings),
                    cipher=runtime.cipher,
                    progress=bar,
                )
        except (BackupError, OSError) as exc:
            bar.finish()
            fail("restore refused", [str(exc)])
            return EXIT_FAILED
        bar.finish()
    print(f"restored: {_describe(summary)}")
    return EXIT_OK


def run_reset(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    if not settings.enable_db_reset:
        fail("reset refused", ["set ENABLE_DB_RESET=true to allow deleting every row"])
        return EXIT_FAILED
    if not args.yes:
        fail("reset refused", ["pass --yes to confirm that every row of every table goes"])
        return EXIT_FAILED
    with admin_runtime() as runtime:
        reset_database(runtime.engine)
    print("database reset: every table is empty; every workspace must install the app again")
    return EXIT_OK
