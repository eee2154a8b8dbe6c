"""The contract table rendered as Cloud Run env: every variable handled, secrets by reference."""

from __future__ import annotations

import pytest

from infra.contract import RUNTIME_ENV, SECRET_ENV, Source
from infra.gcp.env import DatabaseEnv, DeliveryEnv, SecretRef, container_env
from infra.gcp.naming import account_email, account_id, artifact_bucket_name, image_repository_url
from infra.gcp.queue import delivery_queue_id, queue_path

DATABASE = DatabaseEnv(host="10.0.0.3", port="5432", user="syncbot", schema="syncbot")
URL = "https://syncbot-1.europe-west1.run.app"
QUEUE = "projects/p/locations/europe-west1/queues/syncbot-deliveries"
DELIVERY = DeliveryEnv(queue=QUEUE, invoker="syncbot-tasks@p.iam.gserviceaccount.com")


def _render(**overrides: object) -> dict[str, dict[str, object]]:
    kwargs: dict[str, object] = {
        "config": {},
        "secrets": {},
        "database": DATABASE,
        "public_url": URL,
        **overrides,
    }
    envs = container_env(**kwargs)  # type: ignore[arg-type]
    names = [env["name"] for env in envs]
    assert len(names) == len(set(names)), "a variable is wired twice"
    return {env["name"]: env for env in envs}


def test_every_contract_variable_is_wired_when_everything_is_given() -> None:
    config = {
        v.name: "x"
        for v in RUNTIME_ENV
        if v.source is Source.CONFIG
        and v.name not in ("LOCAL_DEVELOPMENT", "SYNCBOT_AUTO_MIGRATE")
    }
    secrets = {name: SecretRef(secret=f"id-{name}", version="3") for name in SECRET_ENV}
    envs = _render(
        config=config,
        secrets=secrets,
        scheduler_account="sched@p.iam.gserviceaccount.com",
        delivery=DELIVERY,
    )
    expected = {v.name for v in RUNTIME_ENV if v.source is not Source.RUNTIME}
    assert set(envs) == expected
    assert envs["SYNCBOT_TICK_INVOKERS"]["value"] == "sched@p.iam.gserviceaccount.com"
    assert "PORT" not in envs  # Cloud Run injects it and rejects it as an env var


def test_secrets_are_references_never_values() -> None:
    secrets = {name: SecretRef(secret=f"id-{name}", version="7") for name in SECRET_ENV}
    envs = _render(secrets=secrets)
    for name in SECRET_ENV:
        assert "value" not in envs[name]
        assert envs[name]["value_source"] == {
            "secret_key_ref": {"secret": f"id-{name}", "version": "7"}
        }


def test_optional_secrets_without_a_reference_are_left_out() -> None:
    envs = _render(secrets={"SLACK_SIGNING_SECRET": SecretRef("s", "1")})
    assert "SLACK_BOT_TOKEN" not in envs
    assert "MATRIX_AS_TOKEN" not in envs
    assert "SLACK_SIGNING_SECRET" in envs


def test_defaults_database_and_service_values() -> None:
    envs = _render(config={"LOG_LEVEL": "DEBUG"})
    assert envs["LOG_LEVEL"]["value"] == "DEBUG"
    assert envs["REQUIRE_ADMIN"]["value"] == "true"  # contract default
    assert "PRIMARY_WORKSPACE" not in envs  # no value, no default: the app's own default
    assert envs["DATABASE_HOST"]["value"] == "10.0.0.3"
    assert envs["DATABASE_PORT"]["value"] == "5432"
    assert envs["SYNCBOT_PUBLIC_URL"]["value"] == URL
    assert envs["LOCAL_DEVELOPMENT"]["value"] == "false"
    assert envs["SYNCBOT_AUTO_MIGRATE"]["value"] == "false"


def test_without_a_managed_database_the_url_carries_the_connection() -> None:
    envs = _render(database=None, secrets={"DATABASE_URL": SecretRef("url", "2")})
    assert not {"DATABASE_HOST", "DATABASE_PORT", "DATABASE_USER", "DATABASE_SCHEMA"} & set(envs)
    assert envs["DATABASE_URL"]["value_source"]["secret_key_ref"] == {
        "secret": "url",
        "version": "2",
    }
    with pytest.raises(ValueError, match="DATABASE_URL"):
        _render(database=None)


@pytest.mark.parametrize(
    ("config", "secrets", "message"),
    [
        ({"NOT_IN_CONTRACT": "1"}, {}, "not a contract variable"),
        ({"SLACK_SIGNING_SECRET": "plain"}, {}, "secret-sourced"),
        ({"DATABASE_HOST": "h"}, {}, "database-sourced"),
        ({"LOCAL_DEVELOPMENT": "true"}, {}, "must be false"),
        ({"SYNCBOT_AUTO_MIGRATE": "true"}, {}, "must be false"),
        ({}, {"LOG_LEVEL": SecretRef("s", "1")}, "not a secret contract variable"),
    ],
)
def test_misplaced_values_are_refused(
    config: dict[str, str], secrets: dict[str, SecretRef], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _render(config=config, secrets=secrets)


def test_names_fit_gcp_limits() -> None:
    long_prefix = "syncbot-" + "e" * 21
    assert account_id("syncbot-prod", "deploy") == "syncbot-prod-deploy"
    assert len(account_id(long_prefix, "deploy")) == 30
    assert account_id(long_prefix, "sched").endswith("-sched")
    bucket = artifact_bucket_name("p" * 30, long_prefix)
    assert len(bucket) <= 63 and bucket.endswith("-artifacts")
    assert artifact_bucket_name("my-proj", "syncbot-prod") == "my-proj-syncbot-prod-artifacts"
    assert image_repository_url("europe-west1", "my-proj", "syncbot-prod") == (
        "europe-west1-docker.pkg.dev/my-proj/syncbot-prod"
    )


def test_dispatch_goes_through_cloud_tasks_when_a_queue_is_given() -> None:
    envs = _render(delivery=DELIVERY)
    assert envs["SYNCBOT_DISPATCH"] == {"name": "SYNCBOT_DISPATCH", "value": "cloud_tasks"}
    assert envs["SYNCBOT_DELIVERY_QUEUE"]["value"] == QUEUE
    assert envs["SYNCBOT_DELIVERY_INVOKER"]["value"] == "syncbot-tasks@p.iam.gserviceaccount.com"


def test_without_a_queue_the_dispatch_variables_are_left_out() -> None:
    envs = _render()
    assert not {"SYNCBOT_DISPATCH", "SYNCBOT_DELIVERY_QUEUE", "SYNCBOT_DELIVERY_INVOKER"} & set(
        envs
    )


def test_queue_path_and_invoker_email_are_known_from_names() -> None:
    assert queue_path("p", "europe-west1", delivery_queue_id("syncbot")) == QUEUE
    assert account_email(account_id("syncbot", "tasks"), "p") == DELIVERY.invoker
    long_name = "s" * 120
    assert len(delivery_queue_id(long_name)) == 100
