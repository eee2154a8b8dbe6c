"""``python -m fakeslack``: the fake Slack in its own process.

Prints one JSON line on stdout once it listens (``url``, ``api_url``, ``control_url``, signing
secret, app token, workspaces with their bot tokens and channel/user ids), then serves the Web
API, OAuth, files, Socket Mode, Events API delivery and the control API (see
:mod:`fakeslack.control`) until SIGTERM or SIGINT. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from .fake import FakeSlack


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fakeslack", description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    p.add_argument("--workspaces", type=int, default=0, help="numbered workspaces T000, T001…")
    p.add_argument("--channels", type=int, default=1, help="channels per workspace")
    p.add_argument("--users", type=int, default=1, help="people per workspace")
    p.add_argument("--socket-mode", action="store_true", help="workspaces use Socket Mode")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay every Web API answer")
    p.add_argument("--app-url", help="Request URL events are POSTed to")
    p.add_argument("--signing-secret", default="fake-signing-secret-0123456789abcdef")
    p.add_argument("--seed", type=int, default=0, help="seed of random faults")
    p.add_argument(
        "--event-timeout", type=float, default=3.0, help="seconds before an event POST is retried"
    )
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535 or args.workspaces < 0 or args.latency_ms < 0:
        p.error("port, workspaces and latency must be non-negative (port at most 65535)")
    return args


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop where it is installed: in its own process the fake stands for a remote service,
    and asyncio's pure-Python loop made it take more of the machine than the app it serves."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    slack = FakeSlack(signing_secret=args.signing_secret, seed=args.seed, app_url=args.app_url)
    slack.event_settings.timeout = args.event_timeout
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    slack.start(args.port, loop_factory=_loop_factory())
    try:
        slack.populate(
            args.workspaces,
            channels=args.channels,
            users=args.users,
            socket_mode=args.socket_mode,
        )
        if args.latency_ms:
            slack.latency(args.latency_ms / 1000)
        print(json.dumps(slack.describe()), flush=True)
        stop.wait()
    finally:
        slack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
