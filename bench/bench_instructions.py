"""Instructions per delivery of the relay's throughput run, counted by valgrind's callgrind.

Wall-clock and CPU-time figures move with whatever else the machine does; an instruction count
does not (repeat runs of one build agree within ~2 %), so it is how changes to the delivery
path are compared (bench/RESULTS.md)::

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.%p \\
        .venv/bin/python -m bench.bench_instructions --backend sqlite|postgresql

The app runs in this process as in ``bench.bench_relay``'s throughput run (3 targets, Slack
answering at once, 8 events in flight); the fake Slack runs in its own process and is not
counted. 150 messages warm up uninstrumented, then 100 messages (300 deliveries) are counted.
Kernel time (system calls, thread wake-ups) is not in the count.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app.serving import freeze_startup_heap, loop_factory
from bench import bench_relay
from tests.databases import throwaway_database

WARM_UP = 150
COUNTED = 100
TARGETS = 3


def _callgrind(*args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(os.getpid())], capture_output=True)


def _total_instructions() -> int:
    """The largest ``totals:`` of this process's callgrind dumps: the counted window."""
    total = 0
    for name in glob.glob(f"/tmp/cg.{os.getpid()}*"):
        for line in Path(name).read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total = max(total, int(line.split()[1]))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql"))
    backend = parser.parse_args().backend
    with (
        tempfile.TemporaryDirectory() as tmp,
        throwaway_database(backend, Path(tmp)) as url,
        bench_relay.spawn_slack(TARGETS + 1) as slack,
    ):
        services = bench_relay.setup(slack, url, TARGETS)
        freeze_startup_heap()

        async def run() -> None:
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32))
            slack.latency(0.0)
            await bench_relay.throughput(services, WARM_UP)
            _callgrind("-z")
            _callgrind("-i", "on")
            await bench_relay.throughput(services, COUNTED)
            _callgrind("-i", "off")
            _callgrind("-d", "counted")

        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(run())
        services.engine.dispose()
    total = _total_instructions()
    if not total:
        raise SystemExit("no callgrind counts: run this under valgrind --tool=callgrind (above)")
    per = total / (COUNTED * TARGETS) / 1e6
    print(f"{backend}: {per:.3f} M instructions per delivery")


if __name__ == "__main__":
    main()
