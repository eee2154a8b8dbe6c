"""The AWS app stack under mocks: Pulumi.dev.yaml and stacks/examples/aws.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.aws.deploy_policy import deploy_policy
from infra.bundle import file_sha256
from infra.contract import (
    AWS_SECRET_ARNS_ENV,
    ENV_BY_NAME,
    LAMBDA_TASK_KEY,
    ROUTES,
    RUNTIME_ENV,
    SECRET_ENV,
    TASK_MIGRATE,
    TASK_TICK,
    Source,
    route_key,
)
from policies.aws.permissions import allows
from tests.infra.aws.aws_stack_fixtures import CLIENT_SECRET, SIGNING_SECRET, policy_of
from tests.infra.conftest import ACCOUNT_ID, MockRun

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

COMPONENTS = {
    "syncbot:aws:App",
    "syncbot:aws:Network",
    "syncbot:aws:Database",
    "syncbot:aws:Secrets",
    "syncbot:aws:Service",
    "syncbot:aws:Scheduler",
    "syncbot:aws:Migrations",
    "syncbot:aws:DeliveryQueue",
    "syncbot:aws:QueueTrigger",
}


def _function_env(run: MockRun) -> dict[str, str]:
    return run.one("aws:lambda/function:Function").inputs["environment"]["variables"]


def test_every_component_is_built_and_children_are_parented(app_stack: MockRun) -> None:
    assert COMPONENTS <= {r.typ for r in app_stack.resources}
    for resource in app_stack.resources:
        if resource.typ.startswith("pulumi:providers:"):
            continue
        if resource.typ == "syncbot:aws:App":
            assert resource.parent_name is None
            continue
        # Named from the component: renaming it renames every child.
        assert resource.parent_name is not None, resource.name
        assert resource.name.startswith(resource.parent_name), resource.name


def test_database_is_private_encrypted_backed_up_and_requires_tls(app_stack: MockRun) -> None:
    db = app_stack.one("aws:rds/instance:Instance").inputs
    assert db["publiclyAccessible"] is False
    assert db["storageEncrypted"] is True
    assert db["manageMasterUserPassword"] is True
    assert "password" not in db
    assert db["backupRetentionPeriod"] >= 7
    params = app_stack.one("aws:rds/parameterGroup:ParameterGroup")
    tls = {(p["name"], p["value"]) for p in params.inputs["parameters"]}
    assert tls & {("rds.force_ssl", "1"), ("require_secure_transport", "ON")}
    assert db["parameterGroupName"] == params.outputs["name"]


def test_dev_database_is_postgres_without_deletion_protection(dev: MockRun) -> None:
    db = dev.one("aws:rds/instance:Instance").inputs
    assert (db["engine"], db["port"]) == ("postgres", 5432)
    assert db["deletionProtection"] is False
    assert db["skipFinalSnapshot"] is True
    assert db["backupRetentionPeriod"] == 7


def test_production_database_is_protected_and_snapshotted(prod: MockRun) -> None:
    db = prod.one("aws:rds/instance:Instance").inputs
    assert (db["engine"], db["port"]) == ("mysql", 3306)
    assert db["deletionProtection"] is True
    assert db["skipFinalSnapshot"] is False
    assert db["finalSnapshotIdentifier"]
    assert db["multiAz"] is True
    assert db["backupRetentionPeriod"] == 14


def test_database_port_is_open_only_to_the_function(app_stack: MockRun) -> None:
    db_sg = next(
        r
        for r in app_stack.of_type("aws:ec2/securityGroup:SecurityGroup")
        if r.name.endswith("-db-sg")
    )
    fn_sg = next(
        r
        for r in app_stack.of_type("aws:ec2/securityGroup:SecurityGroup")
        if r.name.endswith("-function-sg")
    )
    (rule,) = db_sg.inputs["ingress"]
    assert rule["securityGroups"] == [f"{fn_sg.name}-id"]
    assert not rule.get("cidrBlocks")
    fn = app_stack.one("aws:lambda/function:Function").inputs
    assert fn["vpcConfig"]["securityGroupIds"] == [f"{fn_sg.name}-id"]


def test_network_has_private_subnets_nat_egress_and_a_secrets_endpoint(
    dev: MockRun, prod: MockRun
) -> None:
    subnets = [r for r in dev.of_type("aws:ec2/subnet:Subnet") if "-private-" in r.name]
    assert len(subnets) == 2
    assert all(not s.inputs.get("mapPublicIpOnLaunch") for s in subnets)
    assert len(dev.of_type("aws:ec2/natGateway:NatGateway")) == 1
    # Production survives a zone outage: one NAT per zone.
    assert len(prod.of_type("aws:ec2/natGateway:NatGateway")) == 3
    endpoint = dev.one("aws:ec2/vpcEndpoint:VpcEndpoint").inputs
    assert endpoint["serviceName"] == "com.amazonaws.eu-west-1.secretsmanager"
    assert endpoint["privateDnsEnabled"] is True
    fn = dev.one("aws:lambda/function:Function").inputs
    assert sorted(fn["vpcConfig"]["subnetIds"]) == sorted(f"{s.name}-id" for s in subnets)


def test_every_route_is_present_and_integrated_with_the_function(app_stack: MockRun) -> None:
    integration = app_stack.one("aws:apigatewayv2/integration:Integration")
    alias = app_stack.one("aws:lambda/alias:Alias")
    assert integration.inputs["integrationType"] == "AWS_PROXY"
    assert integration.inputs["integrationUri"] == alias.outputs["invokeArn"]
    routes = {
        r.inputs["routeKey"]: r.inputs for r in app_stack.of_type("aws:apigatewayv2/route:Route")
    }
    # The contract's own tests name the platform routes; here every one reaches the function.
    assert set(routes) == {route_key(route) for route in ROUTES}
    for key, route in routes.items():
        assert route["target"] == f"integrations/{integration.name}-id", key
    stage = app_stack.one("aws:apigatewayv2/stage:Stage").inputs
    assert stage["autoDeploy"] is True and stage["accessLogSettings"]["destinationArn"]


def test_invoke_permission_is_scoped_to_the_api(dev: MockRun) -> None:
    permission = dev.one("aws:lambda/permission:Permission").inputs
    api = dev.one("aws:apigatewayv2/api:Api")
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["sourceArn"].startswith("arn:aws:execute-api:")
    assert permission["sourceArn"].endswith("/*/*")
    assert permission["sourceArn"] != "*"
    assert api.inputs["protocolType"] == "HTTP"


def test_every_non_secret_contract_variable_is_wired(app_stack: MockRun) -> None:
    env = _function_env(app_stack)
    for var in RUNTIME_ENV:
        if var.source is Source.CONFIG and var.default is not None:
            assert var.name in env, var.name
        if var.source in (Source.DATABASE, Source.SERVICE):
            assert env[var.name], var.name
    assert env["LOCAL_DEVELOPMENT"] == "false"
    assert env["SYNCBOT_AUTO_MIGRATE"] == "false"
    assert env["DATABASE_TLS_ENABLED"] == "true"
    assert env["SYNCBOT_PUBLIC_URL"].endswith(".amazonaws.com")
    assert not SECRET_ENV & set(env)
    assert set(env) - {AWS_SECRET_ARNS_ENV} <= set(ENV_BY_NAME)


def test_settings_from_the_stack_file_reach_the_function(dev: MockRun, prod: MockRun) -> None:
    assert _function_env(dev)["LOG_LEVEL"] == "DEBUG"
    assert _function_env(dev)["DATABASE_BACKEND"] == "postgresql"
    env = _function_env(prod)
    assert env["DATABASE_BACKEND"] == "mysql"
    assert env["MATRIX_SERVER_NAME"] == "example.org"
    assert json.loads(env["MATRIX_PERMISSIONS"]) == {
        "example.org": "user",
        "@admin:example.org": "admin",
    }


def test_secrets_are_read_by_arn_at_runtime_and_only_those(dev: MockRun) -> None:
    env = _function_env(dev)
    arns = json.loads(env[AWS_SECRET_ARNS_ENV])
    assert set(arns) == {
        "SLACK_SIGNING_SECRET",
        "SLACK_CLIENT_SECRET",
        "TOKEN_ENCRYPTION_KEY",
        "SYNCBOT_METRICS_TOKEN",
        "DATABASE_PASSWORD",
    }
    assert arns["DATABASE_PASSWORD"].endswith("#password")
    secrets = {r.name: r for r in dev.of_type("aws:secretsmanager/secret:Secret")}
    assert len(secrets) == 4
    assert all(r.inputs["description"] for r in secrets.values())
    role_policy = next(
        r
        for r in dev.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.parent_name and r.parent_name.endswith("-svc")
    )
    granted = [
        s
        for s in policy_of(role_policy.inputs)["Statement"]
        if "secretsmanager:GetSecretValue" in s["Action"]
    ]
    assert len(granted) == 1
    expected = {arn.split("#")[0] for arn in arns.values()}
    assert set(granted[0]["Resource"]) == expected


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_secret_values_never_appear_in_plain_inputs_or_outputs(
    stack: str, request: pytest.FixtureRequest
) -> None:
    run: MockRun = request.getfixturevalue(stack)
    values = (
        (SIGNING_SECRET, CLIENT_SECRET)
        if stack == "dev"
        else (
            "v1:Zm9vYmFyYmF6cXV4:c2lnbmluZy1zZWNyZXQtY2lwaGVydGV4dA==",
            "v1:YmFyZm9vYmF6cXV4:aHMtdG9rZW4tY2lwaGVydGV4dA==",
        )
    )
    versions = run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    stored = {v.inputs["secretString"] for v in versions}
    assert set(values) <= stored
    assert all("secretString" in v.secret_inputs for v in versions)
    for resource in run.resources:
        if resource.typ == "aws:secretsmanager/secretVersion:SecretVersion":
            continue
        text = json.dumps(resource.inputs, default=str)
        assert not any(value in text for value in values), resource.name
    assert not any(value in json.dumps(run.outputs, default=str) for value in values)


def test_function_shape(dev: MockRun, prod: MockRun, bundle: Path) -> None:
    fn = dev.one("aws:lambda/function:Function").inputs
    assert fn["runtime"] == "python3.12"
    assert fn["handler"] == "app.lambda_handler.handler"
    assert fn["architectures"] == ["arm64"]
    assert (fn["memorySize"], fn["timeout"]) == (512, 30)
    # No reservation unless asked for: a new account's quota cannot reserve any.
    assert "reservedConcurrentExecutions" not in fn
    assert fn["loggingConfig"]["logGroup"]
    logs = [r for r in dev.of_type("aws:cloudwatch/logGroup:LogGroup")]
    assert {r.inputs["retentionInDays"] for r in logs} == {14}
    assert len(dev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")) >= 3
    # Production uploads the bundle to the artifact store under its content hash.
    obj = prod.one("aws:s3/bucketObjectv2:BucketObjectv2").inputs
    assert obj["key"] == f"bundles/{file_sha256(bundle)}.zip"
    assert obj["bucket"] == "syncbot-prod-artifacts-123456789012-eu-central-1"
    prod_fn = prod.one("aws:lambda/function:Function").inputs
    assert (prod_fn["s3Bucket"], prod_fn["s3Key"]) == (obj["bucket"], obj["key"])
    alarm = prod.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")[0].inputs
    assert alarm["alarmActions"]
    assert prod.one("aws:sns/topicSubscription:TopicSubscription").inputs["endpoint"] == (
        "oncall@example.org"
    )


def test_scheduler_ticks_every_five_minutes_with_its_own_role(dev: MockRun) -> None:
    schedule = dev.one("aws:scheduler/schedule:Schedule").inputs
    alias = dev.one("aws:lambda/alias:Alias")
    assert schedule["scheduleExpression"] == "rate(5 minutes)"
    assert schedule["flexibleTimeWindow"] == {"mode": "OFF"}
    assert schedule["target"]["arn"] == alias.outputs["arn"]
    assert json.loads(schedule["target"]["input"]) == {LAMBDA_TASK_KEY: TASK_TICK}
    role = next(r for r in dev.of_type("aws:iam/role:Role") if r.name.endswith("-sched-role"))
    trust = policy_of(role.inputs, "assumeRolePolicy")["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert schedule["target"]["roleArn"] == role.outputs["arn"]
    invoke = next(
        r for r in dev.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("-sched-invoke")
    )
    (statement,) = policy_of(invoke.inputs)["Statement"]
    assert statement["Action"] == ["lambda:InvokeFunction"]
    assert statement["Resource"] == [schedule["target"]["arn"]]


def test_migrations_run_once_per_bundle(dev: MockRun, bundle: Path) -> None:
    invocation = dev.one("aws:lambda/invocation:Invocation").inputs
    assert json.loads(invocation["input"]) == {LAMBDA_TASK_KEY: TASK_MIGRATE}
    assert invocation["triggers"] == {"bundle": file_sha256(bundle)}
    fn = dev.one("aws:lambda/function:Function")
    assert invocation["functionName"] == fn.outputs["name"]
    # The new version runs its own migration before any caller can reach it.
    assert fn.inputs["publish"] is True
    assert invocation["qualifier"] == fn.outputs["version"] != "$LATEST"


def _deploy_policy_for(run: MockRun) -> dict:
    """The deploy role's policy of the bootstrap stack paired with this app stack."""
    obj = run.one("aws:s3/bucketObjectv2:BucketObjectv2").inputs
    provider = run.one("pulumi:providers:aws").inputs
    tags = provider["defaultTags"]
    tags = json.loads(tags) if isinstance(tags, str) else tags
    return deploy_policy(
        partition="aws",
        region=provider["region"],
        account_id=ACCOUNT_ID,
        prefix=tags["tags"]["syncbot:stack"],
        artifact_bucket_arn=f"arn:aws:s3:::{obj['bucket']}",
    )


def test_a_replaced_bundle_is_left_to_the_lifecycle_rule(prod: MockRun) -> None:
    # Each deploy uploads a new key, so Pulumi deletes the previous bundle object. The deploy
    # role may not delete objects: without retain-on-delete the second deploy fails in cleanup.
    obj = prod.one("aws:s3/bucketObjectv2:BucketObjectv2")
    role_policy = _deploy_policy_for(prod)
    bucket_arn = f"arn:aws:s3:::{obj.inputs['bucket']}"
    may_delete = allows(role_policy, "s3:DeleteObject", f"{bucket_arn}/{obj.inputs['key']}")
    assert obj.retain_on_delete or may_delete


def test_metrics_need_a_generated_token_on_the_public_route(dev: MockRun) -> None:
    # /metrics is routed publicly like every contract route; the app answers it only to a
    # scrape carrying SYNCBOT_METRICS_TOKEN, which the stack generates into Secrets Manager.
    routes = {r.inputs["routeKey"] for r in dev.of_type("aws:apigatewayv2/route:Route")}
    assert "GET /metrics" in routes
    arns = json.loads(_function_env(dev)[AWS_SECRET_ARNS_ENV])
    secret = next(
        r
        for r in dev.of_type("aws:secretsmanager/secret:Secret")
        if r.outputs["arn"] == arns["SYNCBOT_METRICS_TOKEN"]
    )
    token = dev.named("syncbot-dev-app-secrets-metrics-token")
    assert token.inputs["length"] >= 32
    assert "SYNCBOT_METRICS_TOKEN" not in _function_env(dev)
    version = next(
        r
        for r in dev.of_type("aws:secretsmanager/secretVersion:SecretVersion")
        if r.inputs["secretId"] == secret.id
    )
    assert version.inputs["secretString"] == token.outputs["result"]
    assert "secretString" in version.secret_inputs


def test_the_live_alias_moves_only_after_the_migration(app_stack: MockRun) -> None:
    fn = app_stack.one("aws:lambda/function:Function")
    alias = app_stack.one("aws:lambda/alias:Alias")
    invocation = app_stack.one("aws:lambda/invocation:Invocation")
    assert alias.inputs["functionVersion"] == fn.outputs["version"]
    assert invocation.urn in alias.dependencies
    permission = app_stack.one("aws:lambda/permission:Permission").inputs
    assert permission["qualifier"] == alias.inputs["name"]


def test_outputs_use_the_contract_names(dev: MockRun, prod: MockRun) -> None:
    api = dev.one("aws:apigatewayv2/api:Api")
    assert dev.outputs["service_url"].startswith("https://")
    assert dev.outputs["service_url"].endswith(".execute-api.eu-west-1.amazonaws.com")
    assert dev.outputs["region"] == "eu-west-1"
    assert api.name.startswith("syncbot-dev-app")
    assert prod.outputs["artifact_bucket"] == "syncbot-prod-artifacts-123456789012-eu-central-1"
    assert prod.outputs["region"] == "eu-central-1"


def test_every_resource_carries_the_stack_tag(dev: MockRun) -> None:
    (provider,) = [r for r in dev.resources if r.typ == "pulumi:providers:aws"]
    tags = (
        json.loads(provider.inputs["defaultTags"])["tags"]
        if isinstance(provider.inputs["defaultTags"], str)
        else provider.inputs["defaultTags"]["tags"]
    )
    assert tags["syncbot:stack"] == "syncbot-dev-app"
    assert provider.inputs["region"] == "eu-west-1"


def test_every_alarm_notifies_a_topic_even_in_dev(dev: MockRun) -> None:
    topic = dev.one("aws:sns/topic:Topic")
    alarms = dev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarms
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [topic.outputs["arn"]], alarm.name
    assert dev.outputs["alarm_topic"] == topic.outputs["arn"]
