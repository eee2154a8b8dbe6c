"""``syncbot check``: validate settings, database, schema and the token key, and say how to fix."""

from __future__ import annotations

import argparse
import importlib.util
import re
from collections.abc import Iterable
from typing import Any

from app.cli.common import EXIT_FAILED, EXIT_OK, fail
from app.errors import ConfigError, StoreError
from app.logs import configure_logging
from app.rotation import verify_sample
from app.settings import ENV_NAMES, Settings, load_settings
from app.store.engine import wait_for_database
from app.store.migrate import current_revisions, head_revisions


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "check",
        help="validate the configuration and the database",
        description="Validate settings, reach the database, compare the schema with head and "
        "decrypt a sample of stored secrets. Prints every problem with how to fix it; exits "
        "non-zero when there is any.",
    )
    parser.add_argument(
        "--wait-db",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for the database (default: 5)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    problems = collect_problems(wait=args.wait_db)
    if problems:
        fail(f"{len(problems)} problem(s) found", problems)
        return EXIT_FAILED
    print("ok: settings, database, schema and token key")
    return EXIT_OK


def _named(problem: str) -> list[str]:
    """The settings a problem line names, its subject first."""
    return [name for name in re.findall(r"\b[A-Z][A-Z0-9_]+\b", problem) if name in ENV_NAMES]


def new_problems(reported: Iterable[str], more: Iterable[str]) -> list[str]:
    """``more`` without the lines whose subject ``reported`` already named (say each once)."""
    seen = {name for line in reported for name in _named(line)}
    return [p for p in more if not _named(p) or _named(p)[0] not in seen]


def dependency_problems(settings: Settings) -> list[str]:
    """Optional packages the configured parts need."""
    problems = []
    if settings.dispatch == "sqs" and importlib.util.find_spec("boto3") is None:
        problems.append(
            "SYNCBOT_DISPATCH=sqs needs boto3, which is not installed: "
            "`pip install 'syncbot[aws]'` (the Lambda runtime ships it)"
        )
    return problems


def collect_problems(*, wait: float) -> list[str]:
    """Every problem found, each ending with how to fix it; stops early only when it must."""
    # The composition root imports every adapter: only commands that build a runtime
    # pay for that.
    from app.assembly import build_runtime

    try:
        settings = load_settings(find_local=True)
    except ConfigError as exc:
        return [f"{p} (fix the variable and run `syncbot check` again)" for p in exc.problems]
    configure_logging(
        settings.log_level, secrets=settings.secret_values(), fmt=settings.log_format or "text"
    )
    problems = [
        f"{p} (set it in the environment or the secret store)"
        for p in settings.production_problems()
    ]
    problems.extend(dependency_problems(settings))
    try:
        runtime = build_runtime(settings)
    except ConfigError as exc:
        return problems + new_problems(problems, exc.problems)
    try:
        try:
            wait_for_database(runtime.engine, timeout=wait)
        except StoreError as exc:
            problems.append(
                f"{exc} (check DATABASE_URL or DATABASE_HOST/PORT/USER/PASSWORD and that the "
                "server is running)"
            )
            return problems
        current, expected = current_revisions(runtime.engine), head_revisions()
        if current != expected:
            have = "+".join(sorted(current)) or "empty"
            problems.append(
                f"schema is at {have}, expected {'+'.join(sorted(expected))} "
                "(run `syncbot migrate`)"
            )
            return problems
        problems.extend(
            f"{p} (set TOKEN_ENCRYPTION_KEY to the key in use, or add the old key to "
            "TOKEN_ENCRYPTION_PREVIOUS_KEYS and run `syncbot rotate-key`)"
            for p in verify_sample(runtime.sessions, runtime.cipher)
        )
        return problems
    finally:
        runtime.close()
