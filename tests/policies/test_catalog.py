from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from policies.catalog import POLICIES

PACK = Path(__file__).resolve().parents[2] / "policies"


def test_every_policy_is_named_described_and_rated() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names))
    for policy in POLICIES:
        assert re.fullmatch(r"syncbot-(aws|gcp|stack)-[a-z0-9-]+", policy.name), policy.name
        assert policy.description.endswith(".")
        assert policy.severity is not None
        assert policy.enforcement_level is EnforcementLevel.MANDATORY
        assert isinstance(policy, ResourceValidationPolicy | StackValidationPolicy)


def test_stack_policies_are_named_for_the_stack_or_a_cross_resource_check() -> None:
    stack = {p.name for p in POLICIES if isinstance(p, StackValidationPolicy)}
    assert stack == {
        "syncbot-aws-s3-bucket-protected",
        "syncbot-aws-sqs-dead-letter",
        "syncbot-aws-sqs-dlq-alarm",
        "syncbot-stack-bootstrap-outputs",
        "syncbot-stack-routes-wired",
        "syncbot-stack-variables-wired",
    }


def test_only_the_entry_point_builds_the_pack() -> None:
    # Constructing PolicyPack starts the analyzer's gRPC server and blocks forever.
    builders = [p for p in PACK.rglob("*.py") if "PolicyPack(" in p.read_text()]
    assert builders == [PACK / "__main__.py"]
    assert "runtime:" in (PACK / "PulumiPolicy.yaml").read_text()


def test_entry_point_starts_the_analyzer_from_the_pack_directory() -> None:
    # The CLI runs __main__.py with policies/ as the working directory; the analyzer answers by
    # printing its gRPC port (bound to 127.0.0.1) and then serves until stopped.
    process = subprocess.Popen(
        [sys.executable, "__main__.py"],
        cwd=PACK,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline().strip()
    finally:
        process.kill()
        _, errors = process.communicate(timeout=30)
    assert first_line.isdigit(), errors


def test_every_policy_is_documented() -> None:
    doc = (PACK.parent / "docs" / "policies-and-ci.md").read_text()
    missing = [p.name for p in POLICIES if f"| `{p.name}`" not in doc]
    assert missing == []
