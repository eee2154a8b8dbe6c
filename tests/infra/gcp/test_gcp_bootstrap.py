"""Bootstrap stack kind: APIs, artifact store and the GitHub deploy identity under mocks."""

from __future__ import annotations

from typing import Any

import pytest

from infra.gcp.bootstrap import Bootstrap, BootstrapArgs
from infra.gcp.deploy_role import DEPLOY_PROJECT_ROLES, github_attribute_condition
from infra.gcp.project_services import REQUIRED_SERVICES
from tests.infra.gcp.gcp_mock_runtime import PROJECT, PROJECT_NUMBER, REGION, Run, run_gcp

REPO = "syncbot-org/syncbot"


@pytest.fixture(scope="module")
def run() -> Run:
    def program() -> dict[str, Any]:
        boot = Bootstrap(
            "boot",
            BootstrapArgs(
                project=PROJECT,
                region=REGION,
                github_repository=REPO,
                github_ref="refs/heads/main",
                github_environment="production",
            ),
        )
        return {
            "deploy_role": boot.deploy_role.service_account_email,
            "provider": boot.deploy_role.provider_name,
            "artifact_bucket": boot.artifacts.bucket_name,
            "image_repository": boot.artifacts.repository_url,
            "service_url": boot.service_url,
        }

    return run_gcp(program)


def test_condition_pins_repository_ref_and_environment() -> None:
    assert github_attribute_condition(REPO, ref="refs/heads/main", environment="prod") == (
        "assertion.repository == 'syncbot-org/syncbot' && assertion.ref == 'refs/heads/main' "
        "&& assertion.environment == 'prod'"
    )
    assert github_attribute_condition(REPO, ref=None, environment="prod") == (
        "assertion.repository == 'syncbot-org/syncbot' && assertion.environment == 'prod'"
    )


@pytest.mark.parametrize(
    ("repository", "ref", "environment"),
    [
        (REPO, None, None),  # the whole repository, every branch and fork PR
        ("syncbot-org", "refs/heads/main", None),
        ("syncbot-org/*", "refs/heads/main", None),
        ("a/b' || true || '", "refs/heads/main", None),
        (REPO, "main", None),
        (REPO, "refs/heads/main' || true", None),
        (REPO, None, "prod' || 'x"),
    ],
)
def test_condition_refuses_loose_or_injected_values(
    repository: str, ref: str | None, environment: str | None
) -> None:
    with pytest.raises(ValueError):
        github_attribute_condition(repository, ref=ref, environment=environment)


def test_required_apis_enabled_and_kept_on_destroy(run: Run) -> None:
    services = run.of_type("gcp:projects/service:Service")
    assert {s.inputs["service"] for s in services} == set(REQUIRED_SERVICES)
    for service in services:
        assert service.inputs["project"] == PROJECT
        assert service.inputs["disableOnDestroy"] is False


def test_artifact_registry_and_private_versioned_bucket(run: Run) -> None:
    repo = run.one("gcp:artifactregistry/repository:Repository").inputs
    assert repo["format"] == "DOCKER"
    assert repo["location"] == REGION
    bucket = run.one("gcp:storage/bucket:Bucket").inputs
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["publicAccessPrevention"] == "enforced"
    assert bucket["versioning"] == {"enabled": True}
    assert not bucket.get("forceDestroy")
    assert bucket["name"] == "syncbot-test-syncbot-artifacts"


def test_wif_provider_has_the_exact_condition(run: Run) -> None:
    pool = run.one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool").inputs
    provider = run.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
    inputs = provider.inputs
    assert inputs["workloadIdentityPoolId"] == pool["workloadIdentityPoolId"]
    assert inputs["oidc"] == {"issuerUri": "https://token.actions.githubusercontent.com"}
    assert inputs["attributeCondition"] == (
        "assertion.repository == 'syncbot-org/syncbot' && assertion.ref == 'refs/heads/main' "
        "&& assertion.environment == 'production'"
    )
    assert inputs["attributeMapping"]["attribute.repository"] == "assertion.repository"
    assert inputs["attributeMapping"]["google.subject"] == "assertion.sub"


def test_workload_identity_user_on_the_exact_principal_set(run: Run) -> None:
    binding = run.one("gcp:serviceaccount/iAMMember:IAMMember").inputs
    assert binding["role"] == "roles/iam.workloadIdentityUser"
    assert binding["member"] == (
        f"principalSet://iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/"
        f"workloadIdentityPools/github-actions/attribute.repository/{REPO}"
    )
    assert binding["serviceAccountId"].endswith(
        "syncbot-deploy@syncbot-test.iam.gserviceaccount.com"
    )


def test_deploy_account_is_least_privilege(run: Run) -> None:
    grants = run.of_type("gcp:projects/iAMMember:IAMMember")
    roles = {g.inputs["role"] for g in grants}
    assert roles == set(DEPLOY_PROJECT_ROLES)
    forbidden = {
        "roles/owner",
        "roles/editor",
        "roles/resourcemanager.projectIamAdmin",
        "roles/secretmanager.secretAccessor",
        "roles/iam.workloadIdentityPoolAdmin",
        "roles/serviceusage.serviceUsageAdmin",
        "roles/storage.admin",
        "roles/artifactregistry.admin",
    }
    assert not roles & forbidden
    member = "serviceAccount:syncbot-deploy@syncbot-test.iam.gserviceaccount.com"
    assert {g.inputs["member"] for g in grants} == {member}
    # Image pushes and artifact uploads are granted on those resources, not the project.
    writer = run.one("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember").inputs
    assert (writer["role"], writer["member"], writer["repository"]) == (
        "roles/artifactregistry.writer",
        member,
        "syncbot",
    )
    bucket = run.one("gcp:storage/bucketIAMMember:BucketIAMMember").inputs
    assert (bucket["role"], bucket["member"]) == ("roles/storage.objectAdmin", member)
    assert bucket["bucket"] == "syncbot-test-syncbot-artifacts"


def test_components_and_children_are_named_and_typed(run: Run) -> None:
    tokens = {r.typ for r in run.resources if r.typ.startswith("syncbot:")}
    assert tokens == {
        "syncbot:gcp:Bootstrap",
        "syncbot:gcp:ProjectServices",
        "syncbot:gcp:ArtifactStore",
        "syncbot:gcp:DeployRole",
    }
    assert all(r.name.startswith("boot") for r in run.resources)


def test_outputs(run: Run) -> None:
    assert run.outputs["deploy_role"] == "syncbot-deploy@syncbot-test.iam.gserviceaccount.com"
    assert run.outputs["artifact_bucket"] == "syncbot-test-syncbot-artifacts"
    assert run.outputs["image_repository"] == f"{REGION}-docker.pkg.dev/{PROJECT}/syncbot"
    assert run.outputs["service_url"] == f"https://syncbot-{PROJECT_NUMBER}.{REGION}.run.app"
    assert run.outputs["provider"].endswith(
        "/workloadIdentityPools/github-actions/providers/github"
    )
    assert not run.secret_outputs


def test_the_delivery_queue_can_be_deployed(run: Run) -> None:
    services = {s.inputs["service"] for s in run.of_type("gcp:projects/service:Service")}
    assert "cloudtasks.googleapis.com" in services
    roles = {g.inputs["role"] for g in run.of_type("gcp:projects/iAMMember:IAMMember")}
    # Queue admin covers the queue-level enqueuer binding; enqueue/invoke are never granted
    # to the deployer on the project.
    assert "roles/cloudtasks.admin" in roles
    assert not roles & {"roles/cloudtasks.enqueuer", "roles/run.invoker"}
