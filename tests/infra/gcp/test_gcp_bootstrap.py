"""Bootstrap stack kind: APIs, artifact store and the GitHub deploy identity under mocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from infra.gcp.bootstrap import Bootstrap, BootstrapArgs
from infra.gcp.deploy_role import (
    DEPLOY_CONFINED_ROLES,
    DEPLOY_CUSTOM_PERMISSIONS,
    DEPLOY_PROJECT_ROLES,
    github_attribute_condition,
)
from infra.gcp.naming import WORKLOAD_ROLES
from infra.gcp.project_services import REQUIRED_SERVICES
from policies.gcp.cel import confines_to_resources
from policies.gcp.iam import is_powerful_role
from tests.infra.conftest import Recorded, evaluate_run
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


PROVIDER = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
DEPLOYER = "serviceAccount:syncbot-deploy@syncbot-test.iam.gserviceaccount.com"
PREVIEWER = "serviceAccount:syncbot-preview@syncbot-test.iam.gserviceaccount.com"
POOL = f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/syncbot-gh"


def _providers(run: Run) -> dict[str, dict[str, Any]]:
    return {p.name.removeprefix("boot-deploy-"): p.inputs for p in run.of_type(PROVIDER)}


def test_wif_provider_has_the_exact_condition(run: Run) -> None:
    pool = run.one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool").inputs
    # One pool per deployment: a fixed id would collide between the environments of a project.
    assert pool["workloadIdentityPoolId"] == "syncbot-gh"
    inputs = _providers(run)["provider"]
    assert inputs["workloadIdentityPoolId"] == pool["workloadIdentityPoolId"]
    assert inputs["oidc"] == {"issuerUri": "https://token.actions.githubusercontent.com"}
    assert inputs["attributeCondition"] == (
        "assertion.repository == 'syncbot-org/syncbot' && assertion.ref == 'refs/heads/main' "
        "&& assertion.environment == 'production'"
    )
    assert inputs["attributeMapping"]["attribute.repository"] == "assertion.repository"
    assert inputs["attributeMapping"]["google.subject"] == "assertion.sub"


def test_pull_requests_get_their_own_provider_and_a_read_only_account(run: Run) -> None:
    preview = _providers(run)["preview-provider"]
    assert preview["attributeCondition"] == (
        "assertion.repository == 'syncbot-org/syncbot' && assertion.event_name == 'pull_request'"
    )
    # The preview provider maps no ref or environment: its principals can never match the
    # deploy account's binding.
    assert set(preview["attributeMapping"]) == {
        "google.subject",
        "attribute.repository",
        "attribute.event_name",
    }
    grants = [
        g.inputs
        for g in run.of_type("gcp:projects/iAMMember:IAMMember")
        if g.inputs["member"] == PREVIEWER
    ]
    assert [g["role"] for g in grants] == ["roles/browser"]


def test_workload_identity_user_on_the_exact_principal_set(run: Run) -> None:
    bindings = {
        b.inputs["serviceAccountId"].rsplit("/", 1)[-1]: b.inputs["member"]
        for b in run.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if b.inputs["role"] == "roles/iam.workloadIdentityUser"
    }
    # Deploys only from the pinned environment; previews only from pull request runs.
    assert bindings == {
        "syncbot-deploy@syncbot-test.iam.gserviceaccount.com": (
            f"principalSet://iam.googleapis.com/{POOL}/attribute.environment/production"
        ),
        "syncbot-preview@syncbot-test.iam.gserviceaccount.com": (
            f"principalSet://iam.googleapis.com/{POOL}/attribute.event_name/pull_request"
        ),
    }


def test_deploy_account_is_least_privilege(run: Run) -> None:
    grants = [
        g.inputs
        for g in run.of_type("gcp:projects/iAMMember:IAMMember")
        if g.inputs["member"] == DEPLOYER
    ]
    plain = {g["role"] for g in grants if not g.get("condition")}
    custom = run.one("gcp:projects/iAMCustomRole:IAMCustomRole")
    assert plain == set(DEPLOY_PROJECT_ROLES) | {custom.outputs["name"]}
    assert not any(is_powerful_role(role) for role in plain)
    # Cloud Run, Cloud Tasks and Cloud Scheduler cannot be confined by resource name: a custom
    # role with exactly the calls the app stack makes replaces their admin roles.
    assert custom.inputs["permissions"] == sorted(DEPLOY_CUSTOM_PERMISSIONS)
    assert not [p for p in custom.inputs["permissions"] if "*" in p]
    assert {p.split(".")[0] for p in custom.inputs["permissions"]} == {
        "run",
        "cloudtasks",
        "cloudscheduler",
    }
    confined = {g["role"]: g["condition"]["expression"] for g in grants if g.get("condition")}
    assert set(confined) == set(DEPLOY_CONFINED_ROLES)
    for role, expression in confined.items():
        assert confines_to_resources(expression) is None, role
    assert (
        'resource.name.startsWith("projects/syncbot-test/instances/syncbot")'
        in (confined["roles/cloudsql.admin"])
    )
    assert f'"projects/{PROJECT_NUMBER}/secrets/syncbot-"' in confined["roles/secretmanager.admin"]
    forbidden = {
        "roles/owner",
        "roles/editor",
        "roles/resourcemanager.projectIamAdmin",
        "roles/secretmanager.secretAccessor",
        "roles/iam.serviceAccountAdmin",
        "roles/iam.serviceAccountUser",
        "roles/iam.workloadIdentityPoolAdmin",
        "roles/serviceusage.serviceUsageAdmin",
        "roles/storage.admin",
        "roles/artifactregistry.admin",
        "roles/compute.networkAdmin",
        "roles/servicenetworking.networksAdmin",
        "roles/run.admin",
        "roles/cloudtasks.admin",
        "roles/cloudscheduler.admin",
    }
    assert not {g["role"] for g in grants} & forbidden
    # Acting as a service account is granted on the three workload accounts, one by one.
    act_as = {
        b.inputs["serviceAccountId"].rsplit("/", 1)[-1]
        for b in run.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if b.inputs["role"] == "roles/iam.serviceAccountUser" and b.inputs["member"] == DEPLOYER
    }
    assert act_as == {
        f"syncbot-{role}@{PROJECT}.iam.gserviceaccount.com" for role in WORKLOAD_ROLES
    }
    # Image pushes and artifact uploads are granted on those resources, not the project.
    writer = run.one("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember").inputs
    assert (writer["role"], writer["member"], writer["repository"]) == (
        "roles/artifactregistry.writer",
        DEPLOYER,
        "syncbot",
    )
    bucket = run.one("gcp:storage/bucketIAMMember:BucketIAMMember").inputs
    assert (bucket["role"], bucket["member"]) == ("roles/storage.objectAdmin", DEPLOYER)
    assert bucket["bucket"] == "syncbot-test-syncbot-artifacts"


def test_the_policy_pack_passes_the_bootstrap_and_catches_project_admin(run: Run) -> None:
    # (The component alone exports no `region`: the stack program adds it.)
    def mandatory(edit: Any = None) -> set[str]:
        found = evaluate_run(run, edit)
        return {v.policy for v in found if v.mandatory} - {"syncbot-stack-bootstrap-outputs"}

    assert mandatory() == set()

    def unconfine(resource: Recorded, props: Mapping[str, Any]) -> Mapping[str, Any]:
        if resource.typ == "gcp:projects/iAMMember:IAMMember" and props.get("condition"):
            return {k: v for k, v in props.items() if k != "condition"}
        return props

    assert mandatory(unconfine) == {"syncbot-gcp-iam-no-project-admin"}


def test_the_network_and_workload_accounts_live_here(run: Run) -> None:
    network = run.one("gcp:compute/network:Network").inputs
    assert network["name"] == "syncbot-vpc"
    subnet = run.one("gcp:compute/subnetwork:Subnetwork").inputs
    assert subnet["name"] == "syncbot-subnet"
    address = run.one("gcp:compute/globalAddress:GlobalAddress").inputs
    assert (address["purpose"], address["addressType"]) == ("VPC_PEERING", "INTERNAL")
    peering = run.one("gcp:servicenetworking/connection:Connection").inputs
    assert peering["service"] == "servicenetworking.googleapis.com"
    accounts = {a.inputs["accountId"] for a in run.of_type("gcp:serviceaccount/account:Account")}
    assert accounts == {f"syncbot-{role}" for role in (*WORKLOAD_ROLES, "deploy", "preview")}
    runtime_acts_as = [
        b.inputs
        for b in run.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if b.inputs["member"] == f"serviceAccount:syncbot-run@{PROJECT}.iam.gserviceaccount.com"
    ]
    assert [b["serviceAccountId"].rsplit("/", 1)[-1] for b in runtime_acts_as] == [
        f"syncbot-tasks@{PROJECT}.iam.gserviceaccount.com"
    ]


def test_components_and_children_are_named_and_typed(run: Run) -> None:
    tokens = {r.typ for r in run.resources if r.typ.startswith("syncbot:")}
    assert tokens == {
        "syncbot:gcp:Bootstrap",
        "syncbot:gcp:ProjectServices",
        "syncbot:gcp:ArtifactStore",
        "syncbot:gcp:PrivateNetwork",
        "syncbot:gcp:WorkloadAccounts",
        "syncbot:gcp:DeployRole",
    }
    assert all(r.name.startswith("boot") for r in run.resources)


def test_outputs(run: Run) -> None:
    assert run.outputs["deploy_role"] == "syncbot-deploy@syncbot-test.iam.gserviceaccount.com"
    assert run.outputs["artifact_bucket"] == "syncbot-test-syncbot-artifacts"
    assert run.outputs["image_repository"] == f"{REGION}-docker.pkg.dev/{PROJECT}/syncbot"
    assert run.outputs["service_url"] == f"https://syncbot-{PROJECT_NUMBER}.{REGION}.run.app"
    assert run.outputs["provider"] == f"{POOL}/providers/github"
    assert not run.secret_outputs


def test_the_delivery_queue_can_be_deployed(run: Run) -> None:
    services = {s.inputs["service"] for s in run.of_type("gcp:projects/service:Service")}
    assert "cloudtasks.googleapis.com" in services
    roles = {g.inputs["role"] for g in run.of_type("gcp:projects/iAMMember:IAMMember")}
    # The custom role covers the queue and its queue-level enqueuer binding; enqueue/invoke
    # are never granted to the deployer on the project.
    permissions = run.one("gcp:projects/iAMCustomRole:IAMCustomRole").inputs["permissions"]
    assert {"cloudtasks.queues.create", "cloudtasks.queues.setIamPolicy"} <= set(permissions)
    assert not {p for p in permissions if p.startswith("cloudtasks.tasks.")}
    assert not roles & {"roles/cloudtasks.enqueuer", "roles/run.invoker"}
