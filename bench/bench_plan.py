"""Wall time of ``python -m stacks.plan`` per stack file (the pre-commit budget is 3 s).

Each run is a fresh interpreter, as in a pre-commit hook. ``--cold`` disables bytecode caching
(every import compiles from source, like a first run); the default lets Python cache bytecode
under a private prefix so repeat runs measure the steady state.

    .venv/bin/python -m bench.bench_plan [--runs 3] [--cold] [--preview]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from stacks.mock_cloud import lambda_bundle

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("Pulumi.dev.yaml", "stacks/examples/aws.yaml", "stacks/examples/gcp.yaml")


def prepared(config: str, tmp: Path) -> Path:
    """The stack file, pointed at a stand-in Lambda bundle when it is an AWS app stack."""
    source = ROOT / config
    document = yaml.safe_load(source.read_text())
    if document["config"].get("syncbot:provider") != "aws":
        return source
    bundle = lambda_bundle(tmp / "bundle.zip")
    document["config"]["syncbot:awsBundlePath"] = str(bundle)
    target = tmp / source.name
    target.write_text(yaml.safe_dump(document))
    return target


def run_once(path: Path, env: dict[str, str], *extra: str) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system; less sensitive to a busy machine), status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "stacks.plan", str(path), "--json", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--preview", action="store_true", help="plan as a first preview")
    args = parser.parse_args()
    extra = ("--preview",) if args.preview else ()
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ)
        if args.cold:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env.pop("PYTHONPYCACHEPREFIX", None)
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(scratch) / "pyc")
        for config in CONFIGS:
            tmp = Path(scratch) / config.replace("/", "_")
            tmp.mkdir()
            path = prepared(config, tmp)
            if not args.cold:
                run_once(path, env, *extra)  # fills the bytecode cache
            walls, cpus, status = [], [], 0
            for _ in range(args.runs):
                wall, cpu, status = run_once(path, env, *extra)
                walls.append(wall)
                cpus.append(cpu)
            print(
                f"{config}: wall median {statistics.median(walls):.2f} s "
                f"(min {min(walls):.2f}), CPU median {statistics.median(cpus):.2f} s "
                f"over {args.runs} runs (exit {status})"
            )


if __name__ == "__main__":
    main()
