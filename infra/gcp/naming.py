"""Deterministic GCP resource names, so one stack can name what another stack created."""

from __future__ import annotations

import re

_ACCOUNT_ID_MAX = 30
_BUCKET_MAX = 63


def _slug(text: str) -> str:
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")


def account_id(prefix: str, role: str) -> str:
    """A service account id (6-30 characters) for ``role`` within a deployment.

    Args:
        prefix: The deployment's name prefix (``syncbot-prod``).
        role: What the account is for (``deploy``, ``run``, ``sched``).

    Returns:
        ``<prefix>-<role>``, the prefix shortened when the id would exceed 30 characters.
    """
    room = _ACCOUNT_ID_MAX - len(role) - 1
    return f"{_slug(prefix)[:room].rstrip('-')}-{role}"


def account_email(account: str, project: str) -> str:
    """A service account's e-mail, known from its id before the account exists."""
    return f"{account}@{project}.iam.gserviceaccount.com"


def account_member(email: str) -> str:
    """A service account as an IAM member (``serviceAccount:<email>``)."""
    return f"serviceAccount:{email}"


def artifact_bucket_name(project: str, prefix: str) -> str:
    """The artifact bucket's globally unique name (project ids are globally unique).

    Args:
        project: The project id.
        prefix: The deployment's name prefix.

    Returns:
        ``<project>-<prefix>-artifacts`` within the 63-character bucket name limit.
    """
    suffix = "-artifacts"
    stem = _slug(f"{project}-{prefix}")[: _BUCKET_MAX - len(suffix)].rstrip("-")
    return f"{stem}{suffix}"


def image_repository_url(region: str, project: str, repository_id: str) -> str:
    """The Docker name prefix of an Artifact Registry repository.

    Args:
        region: The repository's location.
        project: The project id.
        repository_id: The repository id.

    Returns:
        ``<region>-docker.pkg.dev/<project>/<repository_id>``.
    """
    return f"{region}-docker.pkg.dev/{project}/{repository_id}"


# The service accounts a deployment's workloads run as, by role (created by the bootstrap
# stack, used by the app stack): the service and migration job, the scheduler, the delivery
# tasks' OIDC identity.
WORKLOAD_ROLES: tuple[str, ...] = ("run", "sched", "tasks")


def network_name(prefix: str) -> str:
    """The deployment's VPC network name (bootstrap creates it, the app stack attaches to it)."""
    return f"{_slug(prefix)[:58]}-vpc"


def network_id(project: str, prefix: str) -> str:
    """The network's resource id (``projects/<project>/global/networks/<name>``)."""
    return f"projects/{project}/global/networks/{network_name(prefix)}"


def subnet_name(prefix: str) -> str:
    """The deployment's subnet name in its region."""
    return f"{_slug(prefix)[:55]}-subnet"


def subnet_id(project: str, region: str, prefix: str) -> str:
    """The subnet's resource id (``projects/<project>/regions/<region>/subnetworks/<name>``)."""
    return f"projects/{project}/regions/{region}/subnetworks/{subnet_name(prefix)}"


def wif_pool_id(prefix: str) -> str:
    """A Workload Identity pool id (4-32 characters) for one deployment.

    One pool per deployment, because pool ids are unique per project and a deleted pool keeps
    its id for 30 days: a fixed ``github`` would collide between the environments of a project.
    """
    stem = _slug(prefix).removeprefix("gcp-")[: 32 - len("-gh")].rstrip("-")
    return f"{stem}-gh"


def custom_role_id(prefix: str) -> str:
    """A custom role id for the deployment (letters, digits, underscores and periods only)."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", prefix) if w]
    camel = words[0].lower() + "".join(w.capitalize() for w in words[1:]) if words else "syncbot"
    return f"{camel}Deployer"[:64]
