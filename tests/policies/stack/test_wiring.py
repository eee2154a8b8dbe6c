from __future__ import annotations

import json

from infra.contract import ROUTES, route_key
from policies.gcp.cloudrun import SERVICE_V2
from policies.stack import wiring
from tests.policies.sdk import check_stack, stack_resource

ARNS = {
    name: f"arn:aws:secretsmanager:eu-west-1:1:secret:{name}"
    for name in (
        "SLACK_SIGNING_SECRET",
        "SLACK_CLIENT_SECRET",
        "TOKEN_ENCRYPTION_KEY",
        "SYNCBOT_METRICS_TOKEN",
        "DATABASE_PASSWORD",
    )
}
LAMBDA_ENV = {
    "DATABASE_BACKEND": "postgresql",
    "DATABASE_HOST": "db.internal",
    "DATABASE_PORT": "5432",
    "DATABASE_USER": "syncbot",
    "DATABASE_SCHEMA": "syncbot",
    "SLACK_CLIENT_ID": "1.2",
    "SLACK_BOT_SCOPES": "chat:write",
    "SYNCBOT_SECRET_ARNS": json.dumps(ARNS),
    "SYNCBOT_DISPATCH": "sqs",
    "SYNCBOT_DELIVERY_QUEUE": "https://sqs.eu-west-1.amazonaws.com/1/app-deliveries.fifo",
}


def function(env: dict[str, str]) -> object:
    return stack_resource(
        wiring.LAMBDA, {"runtime": "python3.12", "environment": {"variables": env}}, name="app"
    )


def http_api(route_keys: list[str]) -> list:
    api = stack_resource(wiring.HTTP_API, {"protocolType": "HTTP"}, name="api")
    return [api] + [
        stack_resource(wiring.HTTP_ROUTE, {"routeKey": key}, name=f"route-{i}")
        for i, key in enumerate(route_keys)
    ]


ALL_KEYS = [route_key(r) for r in ROUTES]


def test_fully_wired_lambda_stack_passes() -> None:
    resources = [function(LAMBDA_ENV), *http_api(ALL_KEYS)]
    for policy in wiring.POLICIES:
        assert check_stack(policy, resources) == []


def test_missing_routes_are_reported() -> None:
    keys = [k for k in ALL_KEYS if k not in ("GET /health", "ANY /api/federation/{proxy+}")]
    resources = [function(LAMBDA_ENV), *http_api(keys)]
    assert check_stack(wiring.routes_wired, resources) == [
        "routes not delivered to the app: GET /health, ANY /api/federation/{proxy+}."
    ]


def test_catch_all_route_any_method_and_function_url_cover_routes() -> None:
    assert check_stack(wiring.routes_wired, [function(LAMBDA_ENV), *http_api(["$default"])]) == []
    any_method = [k.replace("GET ", "ANY ").replace("POST ", "ANY ") for k in ALL_KEYS]
    assert check_stack(wiring.routes_wired, [function(LAMBDA_ENV), *http_api(any_method)]) == []
    url = stack_resource(wiring.FUNCTION_URL, {"authorizationType": "NONE"})
    assert check_stack(wiring.routes_wired, [function(LAMBDA_ENV), url]) == []


def test_app_without_public_endpoint_is_reported() -> None:
    assert check_stack(wiring.routes_wired, [function(LAMBDA_ENV)]) == [
        "the app has no public HTTPS endpoint."
    ]


def test_stack_without_app_is_not_checked() -> None:
    helper = stack_resource(wiring.LAMBDA, {"environment": {"variables": {"FOO": "1"}}})
    for policy in wiring.POLICIES:
        assert check_stack(policy, [helper]) == []


def test_missing_variables_are_reported() -> None:
    env = {k: v for k, v in LAMBDA_ENV.items() if k not in ("SLACK_CLIENT_ID", "DATABASE_HOST")}
    env["SYNCBOT_FEDERATION_ENABLED"] = "true"
    assert check_stack(wiring.variables_wired, [function(env), *http_api(ALL_KEYS)]) == [
        "app does not receive: SLACK_CLIENT_ID, DATABASE_URL or "
        "DATABASE_HOST+DATABASE_USER+DATABASE_PASSWORD+DATABASE_SCHEMA, SYNCBOT_PUBLIC_URL."
    ]


def test_sqlite_needs_a_url_and_extra_variables_are_configurable() -> None:
    env = {**LAMBDA_ENV, "DATABASE_BACKEND": "sqlite"}
    resources = [function(env), *http_api(ALL_KEYS)]
    assert check_stack(wiring.variables_wired, resources) == [
        "app does not receive: DATABASE_URL."
    ]
    config = {"requiredVariables": ["LOG_LEVEL"]}
    assert check_stack(wiring.variables_wired, [function(LAMBDA_ENV)], config) == [
        "app does not receive: LOG_LEVEL."
    ]


def cloud_run(envs: list[dict], ingress: str = "INGRESS_TRAFFIC_ALL") -> object:
    return stack_resource(
        SERVICE_V2,
        {"ingress": ingress, "template": {"containers": [{"image": "img", "envs": envs}]}},
        name="svc",
    )


def secret_ref(name: str) -> dict:
    return {
        "name": name,
        "valueSource": {"secretKeyRef": {"secret": name.lower(), "version": "1"}},
    }


CLOUD_RUN_ENV = [
    {"name": "SLACK_CLIENT_ID", "value": "1.2"},
    {"name": "SLACK_BOT_SCOPES", "value": "chat:write"},
    secret_ref("SLACK_SIGNING_SECRET"),
    secret_ref("SLACK_CLIENT_SECRET"),
    secret_ref("TOKEN_ENCRYPTION_KEY"),
    secret_ref("SYNCBOT_METRICS_TOKEN"),
    secret_ref("DATABASE_URL"),
]


def test_cloud_run_service_is_wired_by_reference() -> None:
    for policy in wiring.POLICIES:
        assert check_stack(policy, [cloud_run(CLOUD_RUN_ENV)]) == []


def test_internal_only_cloud_run_has_no_public_endpoint() -> None:
    service = cloud_run(CLOUD_RUN_ENV, ingress="INGRESS_TRAFFIC_INTERNAL_ONLY")
    assert check_stack(wiring.routes_wired, [service]) == ["the app has no public HTTPS endpoint."]
    assert check_stack(wiring.variables_wired, [cloud_run(CLOUD_RUN_ENV[1:])]) == [
        "svc does not receive: SLACK_CLIENT_ID."
    ]


def test_a_lambda_app_must_dispatch_through_a_queue() -> None:
    inprocess = {k: v for k, v in LAMBDA_ENV.items() if not k.startswith("SYNCBOT_DELIVERY")}
    inprocess["SYNCBOT_DISPATCH"] = "inprocess"
    assert check_stack(wiring.variables_wired, [function(inprocess)]) == [
        "app does not receive: SYNCBOT_DISPATCH=sqs, SYNCBOT_DELIVERY_QUEUE."
    ]
    unset = {k: v for k, v in LAMBDA_ENV.items() if k != "SYNCBOT_DISPATCH"}
    assert check_stack(wiring.variables_wired, [function(unset)]) == [
        "app does not receive: SYNCBOT_DISPATCH=sqs."
    ]


CLOUD_TASKS_ENV = [
    {"name": "SYNCBOT_DISPATCH", "value": "cloud_tasks"},
    {"name": "SYNCBOT_DELIVERY_QUEUE", "value": "projects/p/locations/l/queues/q"},
    {"name": "SYNCBOT_DELIVERY_INVOKER", "value": "tasks@p.iam.gserviceaccount.com"},
    {"name": "SYNCBOT_PUBLIC_URL", "value": "https://svc.run.app"},
]


def test_cloud_tasks_dispatch_needs_queue_invoker_and_public_url() -> None:
    wired = cloud_run([*CLOUD_RUN_ENV, *CLOUD_TASKS_ENV])
    assert check_stack(wiring.variables_wired, [wired]) == []
    bare = cloud_run([*CLOUD_RUN_ENV, CLOUD_TASKS_ENV[0]])
    assert check_stack(wiring.variables_wired, [bare]) == [
        "svc does not receive: SYNCBOT_DELIVERY_QUEUE, SYNCBOT_DELIVERY_INVOKER, "
        "SYNCBOT_PUBLIC_URL."
    ]
    # Cloud Run may also run serve's own worker (in-process, the default).
    assert check_stack(wiring.variables_wired, [cloud_run(CLOUD_RUN_ENV)]) == []


def test_metrics_are_never_routed_without_a_token() -> None:
    # /metrics is a public contract route: the app must have a token to demand of scrapers.
    arns = {k: v for k, v in ARNS.items() if k != "SYNCBOT_METRICS_TOKEN"}
    env = {**LAMBDA_ENV, "SYNCBOT_SECRET_ARNS": json.dumps(arns)}
    assert check_stack(wiring.variables_wired, [function(env), *http_api(ALL_KEYS)]) == [
        "app does not receive: SYNCBOT_METRICS_TOKEN."
    ]
