"""Stack config parsing: valid files parse, bad config fails naming each key, no traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from stacks.config import SecretValue, StackConfigError, parse_stack_config
from stacks.program import main
from tests.infra.conftest import run_program

ROOT = Path(__file__).resolve().parents[2]

APP: dict[str, Any] = {
    "aws:region": "eu-west-1",
    "syncbot:provider": "aws",
    "syncbot:environment": "dev",
    "syncbot:slackSigningSecret": {"secure": "v1:abc"},
    "syncbot:slackClientSecret": {"secure": "v1:def"},
    "syncbot:settings": {"SLACK_CLIENT_ID": "1.2", "SLACK_BOT_SCOPES": "chat:write"},
}


def _problems(raw: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(raw, **kwargs)
    return list(caught.value.problems)


@pytest.mark.parametrize("name", ["Pulumi.dev.yaml", "stacks/examples/aws.yaml"])
def test_shipped_stack_files_parse(name: str) -> None:
    raw = yaml.safe_load((ROOT / name).read_text())["config"]
    raw.setdefault("syncbot:slackSigningSecret", {"secure": "v1:x"})
    raw.setdefault("syncbot:slackClientSecret", {"secure": "v1:y"})
    config = parse_stack_config(raw)
    assert config.provider == "aws" and config.kind == "app"
    assert config.database.backend in ("postgresql", "mysql")
    assert config.settings["SLACK_BOT_SCOPES"]


def test_defaults_and_types() -> None:
    config = parse_stack_config(APP)
    assert config.database.backup_days == 7
    assert config.database.mode == "create"
    assert config.service.architecture == "x86_64"
    assert config.name_prefix == "syncbot-dev"
    assert config.aws is not None and config.aws.region == "eu-west-1"
    assert isinstance(config.secrets["slackSigningSecret"], SecretValue)
    assert "v1:abc" not in repr(config)


def test_engine_strings_are_typed() -> None:
    raw = {
        **APP,
        "syncbot:production": "true",
        "syncbot:awsAlarmEmail": "oncall@example.org",
        "syncbot:databaseBackupDays": "14",
        "syncbot:settings": '{"SLACK_CLIENT_ID": "1.2", "SLACK_BOT_SCOPES": "a"}',
        "syncbot:slackSigningSecret": "plain-but-decrypted",
        "syncbot:slackClientSecret": "plain-too",
    }
    config = parse_stack_config(
        raw, secret_keys={"syncbot:slackSigningSecret", "syncbot:slackClientSecret"}
    )
    assert config.production is True
    assert config.database.backup_days == 14
    assert config.database.multi_az is True  # production default
    assert config.secrets["slackSigningSecret"].value == "plain-but-decrypted"


def test_production_alarms_must_reach_someone() -> None:
    raw = {**APP, "syncbot:production": "true"}
    for key in ("syncbot:slackSigningSecret", "syncbot:slackClientSecret"):
        raw[key] = {"secure": "x"}
    raw["syncbot:settings"] = {"SLACK_CLIENT_ID": "1.2", "SLACK_BOT_SCOPES": "a"}
    assert "syncbot:awsAlarmEmail: required in production, so alarms reach someone" in (
        _problems(raw)
    )


def test_unknown_backend_is_named() -> None:
    problems = _problems({**APP, "syncbot:databaseBackend": "oracle"})
    assert problems == [
        "syncbot:databaseBackend: unknown value 'oracle' (expected one of postgresql, mysql, "
        "sqlite)"
    ]


def test_sqlite_on_lambda_is_refused() -> None:
    (problem,) = _problems({**APP, "syncbot:databaseBackend": "sqlite"})
    assert problem.startswith("syncbot:databaseBackend: sqlite cannot run on Lambda")


def test_missing_required_keys_are_each_named() -> None:
    raw = {k: v for k, v in APP.items() if k not in ("aws:region", "syncbot:slackClientSecret")}
    problems = _problems(raw)
    assert any(p.startswith("aws:region: required") for p in problems)
    assert any(p.startswith("syncbot:slackClientSecret: required") for p in problems)
    assert len(problems) == 2


def test_plaintext_secrets_unknown_keys_and_bad_settings_are_refused() -> None:
    problems = _problems(
        {
            **APP,
            "syncbot:slackSigningSecret": "in-clear",
            "syncbot:databseBackend": "mysql",
            "syncbot:settings": {
                "SLACK_CLIENT_ID": "1",
                "SLACK_BOT_SCOPES": "a",
                "SLACK_CLIENT_SECRET": "x",
                "NOPE": "1",
                "SYNCBOT_AUTO_MIGRATE": "true",
            },
        }
    )
    assert any(
        p.startswith("syncbot:slackSigningSecret: must be stored encrypted") for p in problems
    )
    assert "syncbot:databseBackend: unknown key" in problems
    assert any("settings.SLACK_CLIENT_SECRET: a secret" in p for p in problems)
    assert any("settings.NOPE: not a contract setting" in p for p in problems)
    assert any("settings.SYNCBOT_AUTO_MIGRATE: set by the stack" in p for p in problems)


def test_bootstrap_needs_a_pinned_repository() -> None:
    base = {
        "aws:region": "eu-west-1",
        "syncbot:provider": "aws",
        "syncbot:kind": "bootstrap",
        "syncbot:environment": "ci",
    }
    assert any(p.startswith("syncbot:githubRepository: required") for p in _problems(base))
    both_missing = _problems({**base, "syncbot:githubRepository": "o/r"})
    assert any("set exactly one" in p for p in both_missing)
    bad_ref = _problems({**base, "syncbot:githubRepository": "o/r", "syncbot:githubRef": "main"})
    assert any(p.startswith("syncbot:githubRef: 'main' is not valid") for p in bad_ref)
    config = parse_stack_config(
        {**base, "syncbot:githubRepository": "o/r", "syncbot:githubRef": "refs/heads/main"}
    )
    assert config.github is not None
    assert config.github.subject == "repo:o/r:ref:refs/heads/main"


def test_existing_vpc_needs_both_keys_and_two_subnets() -> None:
    problems = _problems({**APP, "syncbot:awsVpcId": "vpc-0abc"})
    assert any("set both" in p for p in problems)
    problems = _problems(
        {**APP, "syncbot:awsVpcId": "vpc-0abc", "syncbot:awsPrivateSubnetIds": ["subnet-1"]}
    )
    assert any("at least two subnets" in p for p in problems)


def test_gcp_section() -> None:
    raw = {k: v for k, v in APP.items() if k != "aws:region"}
    config = parse_stack_config(
        {
            **raw,
            "syncbot:provider": "gcp",
            "gcp:project": "p",
            "gcp:region": "europe-west1",
            "syncbot:gcpCloudSqlTier": "db-custom-2-7680",
        }
    )
    assert config.aws is None and config.gcp is not None
    assert (config.gcp.project, config.gcp.cloud_sql_tier) == ("p", "db-custom-2-7680")
    assert config.gcp.cloud_sql_edition == "ENTERPRISE"
    problems = _problems({**raw, "syncbot:provider": "gcp"})
    assert {"gcp:project: required but not set", "gcp:region: required but not set"} <= set(
        problems
    )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_program_reports_bad_config_without_a_traceback() -> None:
    with pytest.raises(pulumi.RunError) as caught:
        run_program(
            main,
            config={
                **APP,
                "syncbot:databaseBackend": "sqlite",
                "syncbot:slackSigningSecret": "v1:abc",
                "syncbot:slackClientSecret": "v1:def",
            },
            secret_keys={"syncbot:slackSigningSecret", "syncbot:slackClientSecret"},
        )
    message = str(caught.value)
    assert message.startswith("invalid stack configuration:")
    assert "syncbot:databaseBackend: sqlite cannot run on Lambda" in message
    # RunError is Pulumi's "print the message, not a stack trace" error.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_missing_bundle_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(pulumi.RunError, match=r"awsBundlePath: .* does not exist"):
        run_program(
            main,
            config={
                **APP,
                "syncbot:awsBundlePath": str(tmp_path / "none.zip"),
                "syncbot:slackSigningSecret": "a",
                "syncbot:slackClientSecret": "b",
            },
            secret_keys={"syncbot:slackSigningSecret", "syncbot:slackClientSecret"},
        )


def test_the_program_reads_secrets_with_require_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pulumi

    from stacks.config import load_stack_config

    asked: list[str] = []
    real = pulumi.Config.require_secret

    def spy(self: pulumi.Config, key: str) -> pulumi.Output[str]:
        asked.append(f"{self.name}:{key}")
        return real(self, key)

    monkeypatch.setattr(pulumi.Config, "require_secret", spy)
    raw = {
        **APP,
        "syncbot:settings": '{"SLACK_CLIENT_ID": "1.2", "SLACK_BOT_SCOPES": "a"}',
        "syncbot:slackSigningSecret": "s1",
        "syncbot:slackClientSecret": "s2",
    }
    secret = ["syncbot:slackSigningSecret", "syncbot:slackClientSecret"]
    try:
        pulumi.runtime.set_all_config(raw, secret)
        config = load_stack_config()
    finally:
        pulumi.runtime.set_all_config({}, [])
    assert sorted(asked) == sorted(secret)
    assert all(value.source is not None for value in config.secrets.values())
