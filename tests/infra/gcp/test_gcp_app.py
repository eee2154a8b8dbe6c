"""App stack kind under mocks: database, secrets, image, migrations, service and scheduler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from app.settings import load_settings
from infra.contract import (
    CONTAINER_MIGRATE_COMMAND,
    CONTAINER_SERVE_COMMAND,
    GENERATED_SECRETS,
    HEALTH_PATH,
    MAINTENANCE_PATH,
    RUNTIME_ENV,
    SECRET_ENV,
    Source,
)
from infra.gcp.app_stack import App, AppArgs, Scaling
from infra.gcp.migrations import execution_token
from infra.gcp.sql_tiers import tier_problem
from infra.gcp.workload import DATABASE_CA_PATH
from tests.infra.gcp.gcp_mock_runtime import (
    CA_PEM,
    PROJECT,
    PROJECT_NUMBER,
    REGION,
    Resource,
    Run,
    run_gcp,
)

SERVICE = "gcp:cloudrunv2/service:Service"
JOB = "gcp:cloudrunv2/job:Job"
URL = f"https://syncbot-{PROJECT_NUMBER}.{REGION}.run.app"
RUNTIME_SA = f"syncbot-run@{PROJECT}.iam.gserviceaccount.com"
NETWORK = f"projects/{PROJECT}/global/networks/syncbot-vpc"
SUBNET = f"projects/{PROJECT}/regions/{REGION}/subnetworks/syncbot-subnet"
SECRET_VALUES = {
    # Shaped like real ones (syncbot refuses short or patterned secrets in production).
    "SLACK_SIGNING_SECRET": "5e1c9a7f3b2d8e4c6a0f1b3d5c7e9a2b",
    "SLACK_CLIENT_SECRET": "d4a8c2e6f0b3d7a1c5e9b2f6a0d4c8e3",
    "MATRIX_AS_TOKEN": "as-Qm4Wz8Rt1Yp6Ln3Vk9Xc2Hb7Jf5Gd0Se",
    "MATRIX_HS_TOKEN": "hs-Pk7Fj2Ub9Ei4Oa6Wq1Ly8Tn3Rx5Cv0Mz",
}
CONFIG = {
    "SLACK_CLIENT_ID": "111.222",
    "SLACK_BOT_SCOPES": "chat:write,channels:history",
    "LOG_LEVEL": "INFO",
    "MATRIX_HOMESERVER_URL": "https://matrix.example.org",
    "MATRIX_SERVER_NAME": "example.org",
}


def _app_program(**overrides: Any) -> Any:
    def program() -> dict[str, Any]:
        args: dict[str, Any] = {
            "project": PROJECT,
            "region": REGION,
            "production": True,
            "database_backend": "postgresql",
            "image_repository": f"{REGION}-docker.pkg.dev/{PROJECT}/syncbot",
            "image_tag": "prod",
            "config": CONFIG,
            "secrets": {k: pulumi.Output.secret(v) for k, v in SECRET_VALUES.items()},
            "scaling": Scaling(min_instances=1, max_instances=5, concurrency=60),
            **overrides,
        }
        app = App("syncbot", AppArgs(**args))
        return {
            "service_url": app.service_url,
            "image_ref": app.image_ref,
            "migration_job": app.migration_job,
        }

    return program


@pytest.fixture(scope="module")
def run() -> Run:
    return run_gcp(_app_program())


@pytest.fixture(scope="module")
def mysql_run() -> Run:
    return run_gcp(_app_program(production=False, database_backend="mysql"))


@pytest.fixture(scope="module")
def existing_run() -> Run:
    url = "postgresql://bot:ex-pass-5@db.example.org:5432/syncbot"
    secrets = {
        k: pulumi.Output.secret(v) for k, v in {**SECRET_VALUES, "DATABASE_URL": url}.items()
    }
    return run_gcp(_app_program(production=False, existing_database=True, secrets=secrets))


def _container(resource: Resource) -> dict[str, Any]:
    template = resource.inputs["template"]
    if resource.typ == JOB:
        template = template["template"]
    (container,) = template["containers"]
    return container


def _envs(resource: Resource) -> dict[str, dict[str, Any]]:
    return {env["name"]: env for env in _container(resource)["envs"]}


# -- database ---------------------------------------------------------------------------


def test_cloud_sql_is_private_tls_only_backed_up_and_protected(run: Run) -> None:
    instance = run.one("gcp:sql/databaseInstance:DatabaseInstance").inputs
    assert instance["databaseVersion"] == "POSTGRES_16"
    assert instance["deletionProtection"] is True
    settings = instance["settings"]
    assert settings["deletionProtectionEnabled"] is True
    assert settings["availabilityType"] == "REGIONAL"
    ip = settings["ipConfiguration"]
    assert ip["ipv4Enabled"] is False
    assert not ip.get("authorizedNetworks")
    assert ip["sslMode"] == "ENCRYPTED_ONLY"
    # The bootstrap stack's network, by its fixed name.
    assert ip["privateNetwork"] == NETWORK
    backups = settings["backupConfiguration"]
    assert backups["enabled"] is True
    assert backups["pointInTimeRecoveryEnabled"] is True


def test_cloud_sql_names_an_edition_that_offers_its_tier(run: Run) -> None:
    # PostgreSQL 16 defaults to ENTERPRISE_PLUS, which refuses the shared-core db-g1-small:
    # without an explicit edition the instance fails at create time.
    instance = run.one("gcp:sql/databaseInstance:DatabaseInstance").inputs
    settings = instance["settings"]
    assert settings["tier"] == "db-g1-small"
    assert settings["edition"] == "ENTERPRISE"
    assert tier_problem(settings["tier"], settings["edition"], instance["databaseVersion"]) is None


def test_a_tier_the_edition_refuses_is_an_error_before_anything_is_created() -> None:
    with pytest.raises(ValueError, match="not offered on ENTERPRISE_PLUS"):
        run_gcp(_app_program(database_tier="db-g1-small", database_edition="ENTERPRISE_PLUS"))


def test_the_app_stack_administers_no_network_and_no_account(run: Run) -> None:
    # Networks, peering and service accounts are the bootstrap stack's: CI's deploy account
    # holds no network or service-account admin role.
    assert not [r for r in run.resources if r.typ.startswith("gcp:compute/")]
    assert not run.of_type("gcp:servicenetworking/connection:Connection")
    assert not run.of_type("gcp:serviceaccount/account:Account")
    assert not run.of_type("gcp:serviceaccount/iAMMember:IAMMember")


def test_mysql_non_production(mysql_run: Run) -> None:
    instance = mysql_run.one("gcp:sql/databaseInstance:DatabaseInstance").inputs
    assert instance["databaseVersion"] == "MYSQL_8_0"
    assert instance["deletionProtection"] is False
    assert instance["settings"]["availabilityType"] == "ZONAL"
    assert instance["settings"]["backupConfiguration"]["binaryLogEnabled"] is True
    assert instance["settings"]["ipConfiguration"]["ipv4Enabled"] is False
    envs = _envs(mysql_run.one(SERVICE))
    assert envs["DATABASE_BACKEND"]["value"] == "mysql"
    assert envs["DATABASE_PORT"]["value"] == "3306"
    assert mysql_run.one(SERVICE).inputs["deletionProtection"] is False


def test_existing_database_creates_no_instance_or_network(existing_run: Run) -> None:
    assert not existing_run.of_type("gcp:sql/databaseInstance:DatabaseInstance")
    assert not existing_run.of_type("gcp:compute/network:Network")
    container = _container(existing_run.one(SERVICE))
    envs = _envs(existing_run.one(SERVICE))
    # The URL carries the connection; no host/user/port/password variables compete with it.
    for name in ("DATABASE_HOST", "DATABASE_PORT", "DATABASE_USER", "DATABASE_PASSWORD"):
        assert name not in envs
    assert envs["DATABASE_URL"]["valueSource"]["secretKeyRef"]["secret"] == "syncbot-database-url"
    assert "DATABASE_SSL_CA_PATH" not in envs  # system trust store
    assert "ex-pass-5" not in json.dumps(existing_run.one(SERVICE).inputs)
    assert "vpcAccess" not in existing_run.one(SERVICE).inputs["template"]
    assert not container.get("volumeMounts")
    versions = existing_run.of_type("gcp:secretmanager/secretVersion:SecretVersion")
    stored = next(v for v in versions if v.name == "syncbot-secrets-database-url-version")
    assert "secretData" in stored.secret_inputs
    assert stored.inputs["secretData"] == "postgresql://bot:ex-pass-5@db.example.org:5432/syncbot"


# -- secrets ----------------------------------------------------------------------------


def test_one_secret_per_value_stored_as_pulumi_secret(run: Run) -> None:
    secrets = {r.inputs["secretId"] for r in run.of_type("gcp:secretmanager/secret:Secret")}
    expected = {
        f"syncbot-{name.lower().replace('_', '-')}"
        for name in [*SECRET_VALUES, "DATABASE_PASSWORD", *GENERATED_SECRETS]
    } | {"syncbot-database-ca-cert"}
    assert secrets == expected
    for version in run.of_type("gcp:secretmanager/secretVersion:SecretVersion"):
        assert "secretData" in version.secret_inputs, f"{version.name} stored in clear"


def test_secret_access_is_per_secret_for_the_runtime_account_only(run: Run) -> None:
    members = run.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")
    secrets = run.of_type("gcp:secretmanager/secret:Secret")
    assert {m.inputs["secretId"] for m in members} == {s.inputs["secretId"] for s in secrets}
    for member in members:
        assert member.inputs["role"] == "roles/secretmanager.secretAccessor"
        assert member.inputs["member"] == f"serviceAccount:{RUNTIME_SA}"
    project_grants = run.of_type("gcp:projects/iAMMember:IAMMember")
    project_grants += run.of_type("gcp:projects/iAMBinding:IAMBinding")
    assert not [g for g in project_grants if "secretmanager" in g.inputs["role"]]


# -- env wiring -------------------------------------------------------------------------


@pytest.mark.parametrize("typ", [SERVICE, JOB])
def test_every_contract_variable_is_wired(run: Run, typ: str) -> None:
    envs = _envs(run.one(typ))
    for var in RUNTIME_ENV:
        if var.source is Source.RUNTIME:
            assert var.name not in envs
        elif var.source is Source.SECRET:
            if var.name in (*SECRET_VALUES, "DATABASE_PASSWORD", *GENERATED_SECRETS):
                ref = envs[var.name]["valueSource"]["secretKeyRef"]
                assert ref == {
                    "secret": f"syncbot-{var.name.lower().replace('_', '-')}",
                    "version": "1",
                }
            else:
                assert var.name not in envs  # optional secret the stack does not provide
        elif var.source is Source.CONFIG:
            expected = CONFIG.get(var.name, var.default)
            if var.name == "DATABASE_BACKEND":
                expected = "postgresql"
            elif var.name == "DATABASE_TLS_ENABLED":
                expected = "true"
            elif var.name == "DATABASE_SSL_CA_PATH":
                expected = DATABASE_CA_PATH
            elif var.name in ("LOCAL_DEVELOPMENT", "SYNCBOT_AUTO_MIGRATE"):
                expected = "false"
            if expected is None:
                assert var.name not in envs
            else:
                assert envs[var.name] == {"name": var.name, "value": expected}
    assert envs["DATABASE_HOST"]["value"] == "10.20.0.3"
    assert envs["DATABASE_PORT"]["value"] == "5432"
    assert envs["DATABASE_USER"]["value"] == "syncbot"
    assert envs["DATABASE_SCHEMA"]["value"] == "syncbot"
    assert envs["SYNCBOT_PUBLIC_URL"]["value"] == URL


@pytest.mark.parametrize("typ", [SERVICE, JOB])
def test_no_secret_value_in_workload_inputs(run: Run, typ: str) -> None:
    dumped = json.dumps(run.one(typ).inputs)
    stored = [
        r.inputs["secretData"]
        for r in run.of_type("gcp:secretmanager/secretVersion:SecretVersion")
        if r.name != "syncbot-secrets-database-ca-cert-version"  # a public certificate
    ]
    # + database password, the generated token key and metrics token
    assert len(stored) == len(SECRET_VALUES) + 1 + len(GENERATED_SECRETS)
    for value in stored:
        assert value not in dumped
    assert not run.one(typ).secret_inputs  # nothing secret flows into the workload at all
    for name in SECRET_ENV:
        assert "value" not in _envs(run.one(typ)).get(name, {})


# -- image, migrations, service ---------------------------------------------------------


def test_image_is_built_from_the_dockerfile_and_pushed(run: Run) -> None:
    image = run.one("docker-build:index:Image").inputs
    assert image["push"] is True
    assert image["dockerfile"]["location"].endswith("/Dockerfile")
    assert image["platforms"] == ["linux/amd64"]
    assert image["tags"] == [f"{REGION}-docker.pkg.dev/{PROJECT}/syncbot/syncbot:prod"]
    # The registry credentials (the deployer's access token) are a secret as a whole.
    assert "registries" in run.one("docker-build:index:Image").secret_inputs
    (registry,) = image["registries"]
    assert registry["address"] == f"{REGION}-docker.pkg.dev"
    assert registry["username"] == "oauth2accesstoken"


def test_workloads_run_the_image_by_digest(run: Run) -> None:
    ref = run.outputs["image_ref"]
    assert "@sha256:" in ref
    for typ in (SERVICE, JOB):
        assert _container(run.one(typ))["image"] == ref


def test_migration_job_runs_once_per_image(run: Run) -> None:
    job = run.one(JOB).inputs
    container = _container(run.one(JOB))
    assert [*container["commands"], *container["args"]] == list(CONTAINER_MIGRATE_COMMAND)
    digest = run.outputs["image_ref"].split("@", 1)[1]
    assert job["runExecutionToken"] == execution_token(digest, "syncbot-migrate")
    assert job["template"]["template"]["serviceAccount"] == RUNTIME_SA
    assert job["template"]["template"]["vpcAccess"]["egress"] == "PRIVATE_RANGES_ONLY"
    assert run.outputs["migration_job"] == "syncbot-migrate"


def test_execution_token_bounds() -> None:
    digest = "sha256:" + "ab" * 32
    assert execution_token(digest, "syncbot-migrate") == "ab" * 8
    assert len("x" * 50) + 1 + len(execution_token(digest, "x" * 50)) <= 62
    with pytest.raises(ValueError):
        execution_token("md5:abc", "job")
    with pytest.raises(ValueError):
        execution_token(digest, "x" * 60)


def test_service_shape(run: Run) -> None:
    service = run.one(SERVICE).inputs
    template = service["template"]
    container = _container(run.one(SERVICE))
    assert service["name"] == "syncbot"
    assert service["location"] == REGION
    assert service["ingress"] == "INGRESS_TRAFFIC_ALL"
    assert service["deletionProtection"] is True
    assert template["serviceAccount"] == RUNTIME_SA
    assert template["maxInstanceRequestConcurrency"] == 60
    assert template["scaling"] == {"minInstanceCount": 1, "maxInstanceCount": 5}
    assert template["vpcAccess"] == {
        "networkInterfaces": [{"network": NETWORK, "subnetwork": SUBNET}],
        "egress": "PRIVATE_RANGES_ONLY",
    }
    assert [*container["commands"], *container["args"]] == list(CONTAINER_SERVE_COMMAND)
    assert container["ports"] == {"containerPort": 8080}
    # Background delivery workers keep running after a response.
    assert container["resources"]["cpuIdle"] is False
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": HEALTH_PATH, "port": 8080}


def test_database_ca_is_mounted_from_secret_manager(run: Run) -> None:
    template = run.one(SERVICE).inputs["template"]
    (volume,) = template["volumes"]
    assert volume["secret"]["secret"] == "syncbot-database-ca-cert"
    assert volume["secret"]["items"] == [{"path": "ca.pem", "version": "1", "mode": 0o444}]
    (mount,) = _container(run.one(SERVICE))["volumeMounts"]
    assert DATABASE_CA_PATH == f"{mount['mountPath']}/ca.pem"
    ca = next(
        v
        for v in run.of_type("gcp:secretmanager/secretVersion:SecretVersion")
        if v.name == "syncbot-secrets-database-ca-cert-version"
    )
    assert ca.inputs["secretData"] == CA_PEM


def test_public_invoke_only_on_the_app_service(run: Run) -> None:
    members = run.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    public = [m for m in members if m.inputs["member"] == "allUsers"]
    assert len(public) == 1
    assert public[0].inputs["role"] == "roles/run.invoker"
    assert public[0].inputs["name"] == "syncbot"


# -- scheduler --------------------------------------------------------------------------


def test_scheduler_uses_a_dedicated_account_with_oidc(run: Run) -> None:
    jobs = {
        j.inputs["httpTarget"]["httpMethod"]: j.inputs
        for j in run.of_type("gcp:cloudscheduler/job:Job")
    }
    assert set(jobs) == {"GET", "POST"}
    assert jobs["GET"]["httpTarget"]["uri"] == f"{URL}{HEALTH_PATH}"
    assert jobs["POST"]["httpTarget"]["uri"] == f"{URL}{MAINTENANCE_PATH}"
    scheduler_sa = f"syncbot-sched@{PROJECT}.iam.gserviceaccount.com"
    for job in jobs.values():
        assert job["schedule"] == "*/5 * * * *"
        assert job["region"] == REGION
        assert job["httpTarget"]["oidcToken"] == {
            "serviceAccountEmail": scheduler_sa,
            "audience": URL,
        }
    invoker = [
        m
        for m in run.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
        if m.inputs["member"] == f"serviceAccount:{scheduler_sa}"
    ]
    assert len(invoker) == 1 and invoker[0].inputs["role"] == "roles/run.invoker"
    assert scheduler_sa != RUNTIME_SA


def test_the_tick_audience_is_the_url_the_app_checks(run: Run) -> None:
    # Cloud Run reports a hash-style `uri` (https://<name>-<hash>-<region>.a.run.app); the app
    # accepts a tick token only for its own SYNCBOT_PUBLIC_URL, so the audience must be that.
    service = run.one(SERVICE)
    envs = service.inputs["template"]["containers"][0]["envs"]
    public_url = next(e["value"] for e in envs if e["name"] == "SYNCBOT_PUBLIC_URL")
    assert service.outputs["uri"].endswith(".a.run.app")
    assert service.outputs["uri"] != public_url
    for job in run.of_type("gcp:cloudscheduler/job:Job"):
        target = job.inputs["httpTarget"]
        assert target["oidcToken"]["audience"] == public_url
        assert target["uri"].startswith(public_url)
    assert run.outputs["service_url"] == public_url


# -- structure and outputs ----------------------------------------------------------------


def test_children_are_named_from_and_parented_to_their_component(run: Run) -> None:
    assert all(r.name.startswith("syncbot") for r in run.resources)
    components = {r.name for r in run.resources if r.typ.startswith("syncbot:gcp:")}
    for resource in run.resources:
        if resource.typ == "syncbot:gcp:App":
            assert resource.parent_name is None
        else:
            assert resource.parent_name in components, resource.name
            assert resource.name.startswith(resource.parent_name), resource.name
    tokens = {r.typ for r in run.resources if r.typ.startswith("syncbot:")}
    assert tokens == {
        "syncbot:gcp:App",
        "syncbot:gcp:Monitoring",
        "syncbot:gcp:Database",
        "syncbot:gcp:Secrets",
        "syncbot:gcp:ContainerImage",
        "syncbot:gcp:Migrations",
        "syncbot:gcp:Service",
        "syncbot:gcp:Scheduler",
        "syncbot:gcp:DeliveryQueue",
    }


def test_outputs(run: Run) -> None:
    assert run.outputs["service_url"] == URL
    assert not run.secret_outputs


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scaling": Scaling(concurrency=1)}, "concurrency"),
        ({"scaling": Scaling(min_instances=3, max_instances=2)}, "min_instances"),
        ({"secrets": {"LOG_LEVEL": "x"}}, "not secret contract variables"),
        ({"config": {"LOCAL_DEVELOPMENT": "true"}}, "must be false"),
        ({"existing_database": True}, "DATABASE_URL"),
    ],
)
def test_bad_arguments_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_gcp(_app_program(**overrides))


@pytest.mark.parametrize("typ", [SERVICE, JOB])
def test_the_app_accepts_the_deployed_environment(run: Run, typ: str, tmp_path: Path) -> None:
    """The env Cloud Run would hand the container parses and is production-ready."""
    ca = tmp_path / "ca.pem"
    ca.write_text(CA_PEM)
    stored = {
        r.inputs["secret"].removesuffix("-id"): r.inputs["secretData"]
        for r in run.of_type("gcp:secretmanager/secretVersion:SecretVersion")
    }
    secret_ids = {
        r.name: r.inputs["secretId"] for r in run.of_type("gcp:secretmanager/secret:Secret")
    }
    by_secret_id = {secret_ids[name]: value for name, value in stored.items()}
    environ = {"PORT": "8080"}  # what Cloud Run injects
    for name, env in _envs(run.one(typ)).items():
        if "valueSource" in env:
            environ[name] = by_secret_id[env["valueSource"]["secretKeyRef"]["secret"]]
        else:
            environ[name] = str(env["value"])
    environ["DATABASE_SSL_CA_PATH"] = str(ca)  # the mounted file, here
    settings = load_settings(environ)
    assert settings.production_problems() == []
    assert settings.database_backend == "postgresql"
    assert settings.tls_enabled
    assert not settings.local_development
    assert not settings.should_auto_migrate
    assert settings.matrix_enabled


# -- delivery queue (Cloud Tasks) -----------------------------------------------------------

QUEUE_PATH = f"projects/{PROJECT}/locations/{REGION}/queues/syncbot-deliveries"
INVOKER_SA = f"syncbot-tasks@{PROJECT}.iam.gserviceaccount.com"


def test_cloud_tasks_queue_in_the_service_region_with_bounded_retries(run: Run) -> None:
    queue = run.one("gcp:cloudtasks/queue:Queue").inputs
    assert (queue["name"], queue["location"], queue["project"]) == (
        "syncbot-deliveries",
        REGION,
        PROJECT,
    )
    retry = queue["retryConfig"]
    assert 1 <= retry["maxAttempts"] <= 100
    assert retry["minBackoff"] == "1s" and retry["maxBackoff"] == "300s"
    limits = queue["rateLimits"]
    assert limits["maxDispatchesPerSecond"] > 0 and limits["maxConcurrentDispatches"] > 0


def test_a_dedicated_invoker_may_call_the_service_and_nothing_else(run: Run) -> None:
    assert INVOKER_SA not in (RUNTIME_SA, f"syncbot-sched@{PROJECT}.iam.gserviceaccount.com")
    grants = [
        m
        for m in run.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
        if m.inputs["member"] == f"serviceAccount:{INVOKER_SA}"
    ]
    assert [(g.inputs["role"], g.inputs["name"]) for g in grants] == [
        ("roles/run.invoker", "syncbot")
    ]
    # No project-level grant in the app stack at all (the invoker's or anyone's).
    assert not run.of_type("gcp:projects/iAMMember:IAMMember")


def test_the_runtime_may_enqueue_on_this_queue_only(run: Run) -> None:
    runtime = f"serviceAccount:{RUNTIME_SA}"
    enqueuer = run.one("gcp:cloudtasks/queueIamMember:QueueIamMember").inputs
    assert (enqueuer["role"], enqueuer["member"], enqueuer["name"]) == (
        "roles/cloudtasks.enqueuer",
        runtime,
        "syncbot-deliveries",
    )
    assert enqueuer["location"] == REGION


@pytest.mark.parametrize("typ", [SERVICE, JOB])
def test_workloads_dispatch_through_cloud_tasks(run: Run, typ: str) -> None:
    envs = _envs(run.one(typ))
    assert envs["SYNCBOT_DISPATCH"]["value"] == "cloud_tasks"
    assert envs["SYNCBOT_DELIVERY_QUEUE"]["value"] == QUEUE_PATH
    assert envs["SYNCBOT_DELIVERY_INVOKER"]["value"] == INVOKER_SA


def test_the_queue_exists_before_the_first_revision(run: Run) -> None:
    service = run.one(SERVICE)
    component = run.one("syncbot:gcp:DeliveryQueue")
    assert component.urn in service.dependencies or any(
        r.urn in service.dependencies for r in run.children_of(component.name)
    )


def test_no_component_registers_a_password_or_secret_value(run: Run) -> None:
    # Registered outputs live in the component's state: the database password and every secret
    # value stay attributes used for wiring, never outputs.
    database = run.one("syncbot:gcp:Database")
    assert set(run.component_outputs[database.urn]) == {"host", "port", "user", "schema"}
    secrets = [
        r.inputs["secretData"]
        for r in run.of_type("gcp:secretmanager/secretVersion:SecretVersion")
    ]
    text = json.dumps(run.component_outputs, default=str)
    assert not [value for value in secrets if value in text and not value.startswith("-----")]


def test_an_uptime_check_and_alerts_watch_the_service(run: Run) -> None:
    uptime = run.one("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig").inputs
    assert uptime["httpCheck"]["path"] == "/health" and uptime["httpCheck"]["useSsl"] is True
    assert uptime["monitoredResource"]["labels"]["host"] == URL.removeprefix("https://")
    policies = run.of_type("gcp:monitoring/alertPolicy:AlertPolicy")
    filters = [p.inputs["conditions"][0]["conditionThreshold"]["filter"] for p in policies]
    assert any("uptime_check/check_passed" in f for f in filters)
    assert any('response_code_class="5xx"' in f for f in filters)
