"""The provider contract table is complete and agrees with the app and the stack config."""

from __future__ import annotations

from app.settings import describe
from infra.contract import (
    BOOTSTRAP_OUTPUTS,
    ENV_BY_NAME,
    ROUTES,
    RUNTIME_ENV,
    SECRET_ENV,
    Source,
    route_key,
)
from stacks.config import CONFIG_SETTINGS, SECRET_KEYS, STACK_OWNED_SETTINGS


def test_names_are_unique() -> None:
    assert len(ENV_BY_NAME) == len(RUNTIME_ENV)
    keys = [route_key(route) for route in ROUTES]
    assert len(set(keys)) == len(keys)


def test_the_platform_routes_of_the_contract_are_served() -> None:
    keys = {route_key(route) for route in ROUTES}
    assert {
        "POST /slack/events",
        "GET /slack/install",
        "GET /slack/oauth_redirect",
        "GET /health",
        "ANY /api/federation/{proxy+}",
        "ANY /_matrix/{proxy+}",
    } <= keys
    assert all(route.path.startswith("/") for route in ROUTES)


def test_bootstrap_output_names() -> None:
    assert BOOTSTRAP_OUTPUTS == ("deploy_role", "artifact_bucket", "region", "service_url")


def test_contract_and_app_settings_agree_on_names_and_secrecy() -> None:
    app = {name: secret for name, _default, secret in describe()}
    for var in RUNTIME_ENV:
        assert var.name in app, f"{var.name} is in the contract but the app does not read it"
        assert app[var.name] == var.secret, var.name


def test_every_variable_has_a_way_in_from_stack_config() -> None:
    # Secrets: a secret stack key each, except the password the managed database provides.
    assert set(SECRET_KEYS.values()) | {"DATABASE_PASSWORD"} == set(SECRET_ENV)
    plain = {v.name for v in RUNTIME_ENV if v.source is Source.CONFIG}
    assert CONFIG_SETTINGS | STACK_OWNED_SETTINGS == plain
    assert not CONFIG_SETTINGS & STACK_OWNED_SETTINGS
