"""GCP names for the shared mock cloud (:mod:`stacks.mock_cloud`), which computes what GCP
computes (service account e-mails, hash-style ``a.run.app`` URIs, Cloud SQL's private IP and
server CA, image digests, WIF resource names)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi

from stacks import mock_cloud
from tests.infra.conftest import MockRun, Recorded, run_program

Run = MockRun
Resource = Recorded

PROJECT = mock_cloud.DEFAULT_GCP_PROJECT
PROJECT_NUMBER = mock_cloud.PROJECT_NUMBER
REGION = mock_cloud.DEFAULT_GCP_REGION
CA_PEM = mock_cloud.CA_PEM
ACCESS_TOKEN = mock_cloud.ACCESS_TOKEN


def run_gcp(program: Callable[[], Mapping[str, pulumi.Input[Any]]]) -> MockRun:
    """Run ``program`` under the shared mock cloud."""
    try:
        return run_program(program)
    finally:
        pulumi.runtime.set_all_config({}, [])
