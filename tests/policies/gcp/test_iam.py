from __future__ import annotations

import json

import pytest

from policies.gcp import iam
from tests.policies.sdk import check_resource

PROVIDER = {
    "workloadIdentityPoolId": "github",
    "workloadIdentityPoolProviderId": "github-oidc",
    "oidc": {"issuerUri": "https://token.actions.githubusercontent.com"},
    "attributeMapping": {"google.subject": "assertion.sub"},
}


@pytest.mark.parametrize(
    "condition",
    [
        "assertion.repository == 'acme/syncbot'",
        "assertion.repository_id == '123' && assertion.ref == 'refs/heads/main'",
        "attribute.repository=='acme/syncbot'",
    ],
)
def test_pinned_condition_passes(condition: str) -> None:
    props = {**PROVIDER, "attributeCondition": condition}
    assert check_resource(iam.wif_attribute_condition, iam.WIF_PROVIDER, props) == []


def test_missing_condition_is_reported() -> None:
    assert check_resource(iam.wif_attribute_condition, iam.WIF_PROVIDER, PROVIDER) == [
        "attributeCondition is empty; any repository could authenticate."
    ]


def test_owner_only_condition_is_reported() -> None:
    condition = "assertion.repository_owner == 'acme'"
    props = {**PROVIDER, "attributeCondition": condition}
    assert check_resource(iam.wif_attribute_condition, iam.WIF_PROVIDER, props) == [
        f"attributeCondition {condition!r} admits other repositories: the branch "
        f"{condition!r} does not pin assertion.repository."
    ]


@pytest.mark.parametrize(
    "condition",
    [
        "assertion.repository == 'acme/syncbot' || true",
        "assertion.repository == 'acme/syncbot' && assertion.ref == 'refs/heads/main' || true",
        "(assertion.repository == 'acme/syncbot') || ('x' == 'x')",
        "assertion.repository == 'acme/syncbot' || assertion.repository_owner == 'acme'",
        "assertion.repository != 'acme/syncbot'",
    ],
)
def test_a_branch_that_admits_anything_defeats_the_pin(condition: str) -> None:
    props = {**PROVIDER, "attributeCondition": condition}
    assert check_resource(iam.wif_attribute_condition, iam.WIF_PROVIDER, props) != []


MEMBER = "serviceAccount:run@p.iam.gserviceaccount.com"


@pytest.mark.parametrize("resource_type", [iam.PROJECT_MEMBER, iam.PROJECT_BINDING])
def test_project_secret_accessor_is_reported(resource_type: str) -> None:
    props = {"project": "p", "role": iam.SECRET_ACCESSOR, "member": MEMBER}
    assert check_resource(iam.no_project_secret_accessor, resource_type, props) == [
        "roles/secretmanager.secretAccessor granted on the whole project; grant it on each "
        "secret instead."
    ]


def test_project_policy_document_is_read() -> None:
    policy = {"bindings": [{"role": iam.SECRET_ACCESSOR, "members": [MEMBER]}]}
    props = {"project": "p", "policyData": json.dumps(policy)}
    assert check_resource(iam.no_project_secret_accessor, iam.PROJECT_POLICY, props) != []


def test_other_project_roles_and_per_secret_grants_pass() -> None:
    props = {"project": "p", "role": "roles/cloudsql.client", "member": MEMBER}
    assert check_resource(iam.no_project_secret_accessor, iam.PROJECT_MEMBER, props) == []
    per_secret = {"secretId": "s", "role": iam.SECRET_ACCESSOR, "member": MEMBER}
    secret_member = "gcp:secretmanager/secretIamMember:SecretIamMember"
    assert check_resource(iam.no_project_secret_accessor, secret_member, per_secret) == []


def test_forbidden_roles_are_configurable() -> None:
    props = {"project": "p", "role": "roles/secretmanager.admin", "member": MEMBER}
    config = {"forbiddenRoles": ["roles/secretmanager.admin"]}
    assert (
        check_resource(iam.no_project_secret_accessor, iam.PROJECT_MEMBER, props, config=config)
        != []
    )


@pytest.mark.parametrize("role", iam.RESOURCE_LEVEL_ROLES)
@pytest.mark.parametrize("resource_type", [iam.PROJECT_MEMBER, iam.PROJECT_BINDING])
def test_project_level_invoker_or_enqueuer_is_reported(role: str, resource_type: str) -> None:
    props = {"project": "p", "role": role, "member": MEMBER}
    assert check_resource(iam.resource_level_invokers, resource_type, props) == [
        f"{role} granted on the whole project; grant it on the one service or queue."
    ]


def test_resource_level_grants_and_other_project_roles_pass() -> None:
    queue_member = {"name": "q", "role": "roles/cloudtasks.enqueuer", "member": MEMBER}
    queue_type = "gcp:cloudtasks/queueIamMember:QueueIamMember"
    assert check_resource(iam.resource_level_invokers, queue_type, queue_member) == []
    deploy = {"project": "p", "role": "roles/cloudtasks.admin", "member": MEMBER}
    assert check_resource(iam.resource_level_invokers, iam.PROJECT_MEMBER, deploy) == []


def test_project_policy_bindings_are_read_for_invokers() -> None:
    policy = {"bindings": [{"role": "roles/run.invoker", "members": [MEMBER]}]}
    props = {"project": "p", "policyData": json.dumps(policy)}
    assert check_resource(iam.resource_level_invokers, iam.PROJECT_POLICY, props) != []


CONFINED = (
    'resource.type == "cloudresourcemanager.googleapis.com/Project" || '
    'resource.name.startsWith("projects/p/instances/syncbot-prod")'
)


@pytest.mark.parametrize(
    "role",
    [
        "roles/owner",
        "roles/editor",
        "roles/run.admin",
        "roles/iam.serviceAccountAdmin",
        "roles/iam.serviceAccountUser",
        "roles/secretmanager.admin",
        "roles/cloudsql.admin",
        "roles/resourcemanager.projectIamAdmin",
    ],
)
def test_admin_and_act_as_roles_on_the_project_are_reported(role: str) -> None:
    props = {"project": "p", "role": role, "member": MEMBER}
    (message,) = check_resource(iam.no_project_admin, iam.PROJECT_MEMBER, props)
    assert message.startswith(f"{role} on the whole project")


@pytest.mark.parametrize(
    ("expression", "ok"),
    [
        (CONFINED, True),
        (CONFINED + " || true", False),
        ('resource.type == "cloudresourcemanager.googleapis.com/Project"', False),
        ('resource.name.startsWith("projects/")', False),
        ('resource.name.startsWith("projects/p/instances/syncbot-prod")', True),
        ("request.time < timestamp('2030-01-01T00:00:00Z')", False),
    ],
)
def test_a_condition_confines_an_admin_role_only_by_resource_name(
    expression: str, ok: bool
) -> None:
    props = {
        "project": "p",
        "role": "roles/cloudsql.admin",
        "member": MEMBER,
        "condition": {"title": "t", "expression": expression},
    }
    found = check_resource(iam.no_project_admin, iam.PROJECT_MEMBER, props)
    assert (found == []) is ok, found


def test_unprivileged_project_roles_pass_and_policy_documents_are_read() -> None:
    for role in ("roles/browser", "roles/compute.networkUser", "roles/cloudsql.client"):
        props = {"project": "p", "role": role, "member": MEMBER}
        assert check_resource(iam.no_project_admin, iam.PROJECT_MEMBER, props) == []
    policy = {"bindings": [{"role": "roles/editor", "members": [MEMBER]}]}
    props = {"project": "p", "policyData": json.dumps(policy)}
    assert check_resource(iam.no_project_admin, iam.PROJECT_POLICY, props) != []
