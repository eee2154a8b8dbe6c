"""Settings: every contract variable parsed with its default, production start, bad values."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import infra.contract as contract
from app.errors import ConfigError
from app.settings import ENV_NAMES, SECRET_ENV_NAMES, describe, load_settings

# Production-shaped database variables, so defaults are read as a deployment reads them.
PROD_DB = {
    "DATABASE_BACKEND": "postgresql",
    "DATABASE_HOST": "db.internal",
    "DATABASE_USER": "syncbot",
    "DATABASE_PASSWORD": "db-password-0123456789",
}
GOOD_SECRETS = {
    "SLACK_SIGNING_SECRET": "8f3b2c9e1d7a4f60b5e2c8d9a7f1e3b4",
    "SLACK_CLIENT_ID": "111.222",
    "SLACK_CLIENT_SECRET": "c7d1e9f3a5b2c8d4e6f0a1b3c5d7e9f2",
    "TOKEN_ENCRYPTION_KEY": "Zq8vR1tYx3Lw9Kp2Nb6Hc4Jd7Fg0Sm5Ae",
}


def attr_of(name: str) -> str:
    """The Settings attribute of a contract variable that has a default."""
    return {
        "DATABASE_BACKEND": "database_backend",
        "DATABASE_SCHEMA": "database_schema",
        "SLACK_USER_SCOPES": "slack_user_scopes",
        "SLACK_API_URL": "slack_api_url",
        "REQUIRE_ADMIN": "require_admin",
        "ENABLE_DB_RESET": "enable_db_reset",
        "LOCAL_DEVELOPMENT": "local_development",
        "LOG_LEVEL": "log_level",
        "PORT": "port",
        "SOFT_DELETE_RETENTION_DAYS": "soft_delete_retention_days",
        "SYNCBOT_FEDERATION_ENABLED": "federation_enabled",
        "MATRIX_BOT_LOCALPART": "matrix_bot_localpart",
        "MATRIX_COMMAND_PREFIX": "matrix_command_prefix",
        "SYNCBOT_DISPATCH": "dispatch",
        "MATRIX_CONVERSATION_COUNT": "matrix_conversation_count",
        "MATRIX_BACKFILL_MESSAGES": "matrix_backfill_messages",
        "MATRIX_CATCHUP_INTERVAL": "matrix_catchup_interval",
        "SLACK_HISTORY_LIMIT": "slack_history_limit",
        "SLACK_HISTORY_INTERVAL": "slack_history_interval",
    }[name]


def test_every_contract_variable_is_a_setting_with_the_same_secrecy() -> None:
    contract_names = {v.name for v in contract.RUNTIME_ENV}
    assert contract_names <= set(ENV_NAMES)
    assert {v.name for v in contract.RUNTIME_ENV if v.secret} == SECRET_ENV_NAMES & contract_names
    assert [row[0] for row in describe()] == list(ENV_NAMES)


@pytest.mark.parametrize(
    "var", [v for v in contract.RUNTIME_ENV if v.default is not None], ids=lambda v: v.name
)
def test_contract_default_is_the_settings_default(var: contract.EnvVar) -> None:
    defaults = load_settings(PROD_DB)
    explicit = load_settings({**PROD_DB, var.name: var.default or ""})
    if var.name == "SYNCBOT_AUTO_MIGRATE":
        # Unset means "only for local/embedded use", which a deployment reads as false.
        assert defaults.should_auto_migrate is explicit.should_auto_migrate is False
        return
    if var.name == "DATABASE_BACKEND":
        # Any database variable given without a backend selects the contract's default.
        without_backend = {k: v for k, v in PROD_DB.items() if k != "DATABASE_BACKEND"}
        assert load_settings(without_backend).database_backend == var.default
        return
    attr = attr_of(var.name)
    assert getattr(defaults, attr) == getattr(explicit, attr)


def test_defaults_of_an_empty_environment() -> None:
    s = load_settings({})
    assert s.database_backend == "sqlite" and s.embedded_database
    assert s.database_url == "sqlite:///syncbot.db"
    assert s.port == 3000 and s.log_level == "INFO" and s.soft_delete_retention_days == 30
    assert s.require_admin is True and s.enable_db_reset is False
    assert s.local_development is False and s.federation_enabled is False
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.slack_bot_scopes and "chat:write" in s.slack_bot_scopes
    # The user scopes `login token` uses, no more (#21 item 4).
    assert s.slack_user_scopes == (
        "chat:write",
        "files:write",
        "im:history",
        "im:read",
        "mpim:history",
        "mpim:read",
        "reactions:read",
        "reactions:write",
    )
    assert s.token_encryption_key is None and s.token_previous_keys == ()
    assert s.tls_enabled is True  # on by default outside local development
    assert s.matrix_enabled is False


def test_every_variable_is_parsed() -> None:
    env = {
        **PROD_DB,
        **GOOD_SECRETS,
        "DATABASE_PORT": "6543",
        "DATABASE_SCHEMA": "sb",
        "DATABASE_TLS_ENABLED": "false",
        "SLACK_BOT_SCOPES": "chat:write, users:read",
        "SLACK_USER_SCOPES": "search:read",
        "SLACK_BOT_TOKEN": "xoxb-1-2",
        "SLACK_API_URL": "http://127.0.0.1:9/api",
        "TOKEN_ENCRYPTION_PREVIOUS_KEYS": "old-a,old-b",
        "REQUIRE_ADMIN": "no",
        "PRIMARY_WORKSPACE": "T123",
        "ENABLE_DB_RESET": "yes",
        "LOG_LEVEL": "debug",
        "PORT": "8080",
        "SOFT_DELETE_RETENTION_DAYS": "7",
        "SYNCBOT_FEDERATION_ENABLED": "true",
        "SYNCBOT_INSTANCE_ID": "inst-1",
        "SYNCBOT_PUBLIC_URL": "https://sync.example.org",
        "MATRIX_HOMESERVER_URL": "http://127.0.0.1:8008",
        "MATRIX_SERVER_NAME": "example.org",
        "MATRIX_AS_TOKEN": "as-Ye5Tn8Qw2Ru4Io7Pl1Mk3Jh6Gf9Ds0Az",
        "MATRIX_HS_TOKEN": "hs-Zq8Xr4Lm2Vt7Nw1Kp5Jd9Hc3Gb6Fy0Sa",
        "MATRIX_PERMISSIONS": '{"example.org": "admin"}',
        "SYNCBOT_AUTO_MIGRATE": "true",
    }
    s = load_settings(env)
    assert (s.database_port, s.database_schema, s.tls_enabled) == (6543, "sb", False)
    assert s.slack_bot_scopes == ("chat:write", "users:read")
    assert s.slack_user_scopes == ("search:read",)
    assert s.slack_api_url.startswith("http://127.0.0.1:9/api")
    assert s.token_previous_keys == ("old-a", "old-b")
    assert (s.require_admin, s.enable_db_reset, s.log_level, s.port) == (
        False,
        True,
        "DEBUG",
        8080,
    )
    assert s.soft_delete_retention_days == 7 and s.federation_enabled and s.instance_id == "inst-1"
    assert s.matrix_enabled and s.matrix_permissions == {"example.org": "admin"}
    assert s.should_auto_migrate is True
    assert s.production_problems() == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


def test_production_start_names_every_missing_secret_in_one_error() -> None:
    s = load_settings(PROD_DB)
    with pytest.raises(ConfigError) as caught:
        s.require_production_ready()
    message = str(caught.value)
    for name in (
        "SLACK_SIGNING_SECRET",
        "TOKEN_ENCRYPTION_KEY",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
    ):
        assert name in message
    assert len(caught.value.problems) == 1
    # Local development is allowed to run without them.
    load_settings({"LOCAL_DEVELOPMENT": "true"}).require_production_ready()


def test_weak_secrets_are_refused() -> None:
    s = load_settings(
        {
            **PROD_DB,
            **GOOD_SECRETS,
            "SLACK_SIGNING_SECRET": "short",
            "TOKEN_ENCRYPTION_KEY": "a" * 40,
        }
    )
    problems = s.production_problems()
    assert any("SLACK_SIGNING_SECRET is too short" in p for p in problems)
    assert any("TOKEN_ENCRYPTION_KEY is weak" in p for p in problems)


def test_malformed_values_are_all_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "PORT": "http",
                "LOG_LEVEL": "LOUD",
                "REQUIRE_ADMIN": "perhaps",
                "DATABASE_BACKEND": "oracle",
                "SOFT_DELETE_RETENTION_DAYS": "-1",
                "MATRIX_PERMISSIONS": "[]",
            }
        )
    text = "\n".join(caught.value.problems)
    for name in (
        "PORT",
        "LOG_LEVEL",
        "REQUIRE_ADMIN",
        "DATABASE_BACKEND",
        "SOFT_DELETE_RETENTION_DAYS",
        "MATRIX_PERMISSIONS",
    ):
        assert name in text
    assert len(caught.value.problems) >= 6


def test_secrets_are_not_in_repr_but_are_scrubbable() -> None:
    s = load_settings({**PROD_DB, **GOOD_SECRETS})
    assert GOOD_SECRETS["TOKEN_ENCRYPTION_KEY"] not in repr(s)
    assert GOOD_SECRETS["TOKEN_ENCRYPTION_KEY"] in s.secret_values()
    assert PROD_DB["DATABASE_PASSWORD"] in s.secret_values()


def test_importing_the_app_needs_no_slack_variables() -> None:
    import importlib

    for module in ("app.web", "app.lambda_handler", "app.cli", "app.runtime"):
        importlib.import_module(module)


def test_a_queue_dispatcher_needs_its_queue_and_identity() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({**PROD_DB, "SYNCBOT_DISPATCH": "cloud_tasks"})
    text = str(raised.value)
    assert "SYNCBOT_DELIVERY_QUEUE" in text
    assert "SYNCBOT_DELIVERY_INVOKER" in text
    assert "SYNCBOT_PUBLIC_URL" in text
    with pytest.raises(ConfigError, match="SYNCBOT_DELIVERY_QUEUE"):
        load_settings({**PROD_DB, "SYNCBOT_DISPATCH": "sqs"})
    settings = load_settings(
        {**PROD_DB, "SYNCBOT_DISPATCH": "sqs", "SYNCBOT_DELIVERY_QUEUE": "https://sqs/q.fifo"}
    )
    assert settings.dispatch == "sqs"


def test_socket_mode_only_bridge_starts_without_http_slack_secrets() -> None:
    # The `login app` shape: workspaces log in from Matrix with an app token (Socket Mode);
    # no OAuth install, no Events API over HTTP, so no Slack HTTP secret is needed (#17 item 12).
    matrix = {
        "MATRIX_HOMESERVER_URL": "https://matrix.example.org",
        "MATRIX_SERVER_NAME": "example.org",
        "MATRIX_AS_TOKEN": "as-Ye5Tn8Qw2Ru4Io7Pl1Mk3Jh6Gf9Ds0Az",
        "MATRIX_HS_TOKEN": "hs-Zq8Xr4Lm2Vt7Nw1Kp5Jd9Hc3Gb6Fy0Sa",
    }
    key = {"TOKEN_ENCRYPTION_KEY": GOOD_SECRETS["TOKEN_ENCRYPTION_KEY"]}
    assert load_settings({**PROD_DB, **key, **matrix}).production_problems() == []
    # Exactly what the enabled parts need: half an OAuth setup still asks for the rest.
    half = load_settings({**PROD_DB, **key, **matrix, "SLACK_CLIENT_ID": "111.222"})
    (problem,) = half.production_problems()
    assert "SLACK_CLIENT_SECRET" in problem and "SLACK_SIGNING_SECRET" in problem
    # A single-token install receives events over HTTP: it needs the signing secret only.
    token = load_settings({**PROD_DB, **key, "SLACK_BOT_TOKEN": "xoxb-1-2-abc"})
    (problem,) = token.production_problems()
    assert "SLACK_SIGNING_SECRET" in problem and "CLIENT" not in problem
    # Without Matrix or a token, OAuth is the only way in: all three are required.
    assert "SLACK_CLIENT_ID" in load_settings({**PROD_DB, **key}).production_problems()[0]


def test_secrets_can_be_read_from_files(tmp_path: Path) -> None:
    from app.settings import FILE_ENV_NAMES

    assert {n.removesuffix("_FILE") for n in FILE_ENV_NAMES} == SECRET_ENV_NAMES
    key = tmp_path / "key"
    key.write_text("Zq8vR1tYx3Lw9Kp2Nb6Hc4Jd7Fg0Sm5Ae-from-a-file\n")
    signing = tmp_path / "signing"
    signing.write_text("signing-secret-from-a-file-0123")
    s = load_settings(
        {
            "TOKEN_ENCRYPTION_KEY_FILE": str(key),
            "SLACK_SIGNING_SECRET_FILE": str(signing),
        }
    )
    # The trailing newline an editor or `echo` adds is not part of the secret.
    assert s.token_encryption_key == "Zq8vR1tYx3Lw9Kp2Nb6Hc4Jd7Fg0Sm5Ae-from-a-file"
    assert s.slack_signing_secret == "signing-secret-from-a-file-0123"
    assert s.token_encryption_key in s.secret_values()


def test_secret_file_problems_are_reported_with_the_others(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("x" * 40)
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "TOKEN_ENCRYPTION_KEY": "y" * 40,
                "TOKEN_ENCRYPTION_KEY_FILE": str(key),
                "MATRIX_HS_TOKEN_FILE": str(tmp_path / "missing"),
                "PORT": "seventy",
            }
        )
    problems = caught.value.problems
    assert "TOKEN_ENCRYPTION_KEY and TOKEN_ENCRYPTION_KEY_FILE are both set: keep one" in problems
    assert any(
        p.startswith(f"MATRIX_HS_TOKEN_FILE={tmp_path / 'missing'}: cannot read") for p in problems
    )
    assert any(p.startswith("PORT:") for p in problems)


def test_only_secrets_have_file_variants() -> None:
    # A plain setting's *_FILE is not read (it would be a second, undocumented way in).
    assert load_settings({"LOG_LEVEL_FILE": "/nonexistent"}).log_level == "INFO"


def test_log_format() -> None:
    assert load_settings({}).log_format is None
    assert load_settings({"LOG_FORMAT": "TEXT"}).log_format == "text"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings({"LOG_FORMAT": "xml"})
