"""Entry point the Pulumi CLI runs for ``--policy-pack policies``: assembles the PolicyPack."""

from __future__ import annotations

import sys
from pathlib import Path

# The CLI starts this file with policies/ as the working directory; the rules import
# ``policies.*`` and the contract table from ``infra``, both rooted one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.catalog import PACK_NAME, POLICIES

PolicyPack(
    name=PACK_NAME,
    policies=list(POLICIES),
    enforcement_level=EnforcementLevel.MANDATORY,
    description="syncbot: secure defaults and contract wiring for AWS and GCP stacks.",
)
