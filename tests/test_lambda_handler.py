"""The Lambda entry: HTTP events through Mangum, direct tasks, secret ARNs, lean imports."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import infra.contract as contract
from app import lambda_handler
from app.errors import ConfigError
from app.store.models import OAuthState, ProcessedEvent
from tests.conftest import TEST_KEY
from tests.missing_packages import run_without

REPO = Path(__file__).resolve().parent.parent


class FakeSecrets:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.calls: list[str] = []

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        self.calls.append(SecretId)
        if SecretId not in self.values:
            raise KeyError(SecretId)
        return {"SecretString": self.values[SecretId]}


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    db = tmp_path / "lambda.db"
    for name in ("SYNCBOT_SECRET_ARNS", "TOKEN_ENCRYPTION_KEY", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOCAL_DEVELOPMENT", "true")
    monkeypatch.setenv("DATABASE_BACKEND", "sqlite")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("SYNCBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEY", TEST_KEY)
    lambda_handler.reset()
    yield db
    lambda_handler.reset()


def http_event(path: str, method: str = "GET") -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "abc.lambda-url.eu-west-1.on.aws", "x-request-id": "lambda-req-42"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "abc.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abc",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "test",
            },
            "requestId": "id",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    }


def test_names_match_the_infra_contract() -> None:
    assert lambda_handler.SECRET_ARNS_ENV == contract.AWS_SECRET_ARNS_ENV
    assert lambda_handler.TASK_KEY == contract.LAMBDA_TASK_KEY
    assert lambda_handler.TASK_MIGRATE == contract.TASK_MIGRATE
    assert lambda_handler.TASK_TICK == contract.TASK_TICK
    assert lambda_handler.JSON_FIELD_SEPARATOR == contract.AWS_SECRET_JSON_KEY_SEPARATOR


def test_migrate_task_then_http_health(lambda_env: Path) -> None:
    # Before the migrate task the schema is missing: the probe says so.
    before = lambda_handler.handler(http_event("/health"), None)
    assert before["statusCode"] == 503

    result = lambda_handler.handler({"syncbot_task": "migrate"}, None)
    assert result["ok"] is True and result["revision"]

    response = lambda_handler.handler(http_event("/health"), None)
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body | {"status": "ok", "database": "ok", "schema": "head"} == body
    assert response["headers"]["x-request-id"] == "lambda-req-42"

    missing = lambda_handler.handler(http_event("/nope"), None)
    assert missing["statusCode"] == 404


def test_tick_task_purges_expired_claims(lambda_env: Path) -> None:
    lambda_handler.handler({"syncbot_task": "migrate"}, None)
    runtime = lambda_handler._runtime()
    now = datetime.now(UTC)
    with runtime.sessions() as session, session.begin():
        session.add_all(
            [
                ProcessedEvent(key="old", expires_at=now - timedelta(hours=1)),
                ProcessedEvent(key="fresh", expires_at=now + timedelta(hours=1)),
                OAuthState(state="stale", expires_at=now - timedelta(minutes=1)),
            ]
        )
    result = lambda_handler.handler({"syncbot_task": "tick"}, None)
    # Other maintenance tasks (the outbox catch-up) run too; this test owns the purge.
    assert result["task"] == "tick" and result["ok"] is True
    assert result["results"]["purge_expired_claims"] == 2
    with runtime.sessions() as session:
        assert session.scalars(select(ProcessedEvent.key)).all() == ["fresh"]
        assert session.scalar(select(func.count()).select_from(OAuthState)) == 0


def test_unknown_task_is_reported(lambda_env: Path) -> None:
    result = lambda_handler.handler({"syncbot_task": "dance"}, None)
    assert result["ok"] is False and "dance" in result["error"]


def test_secret_arns_resolved_with_boto3_before_settings(
    lambda_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeSecrets({"arn:aws:secretsmanager:x:1:secret:sign": "signing-secret-0123456789"})
    boto3 = types.ModuleType("boto3")
    boto3.client = lambda service: fake if service == "secretsmanager" else None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "boto3", boto3)
    monkeypatch.setenv(
        "SYNCBOT_SECRET_ARNS",
        json.dumps({"SLACK_SIGNING_SECRET": "arn:aws:secretsmanager:x:1:secret:sign"}),
    )
    runtime = lambda_handler._runtime()
    assert runtime.settings.slack_signing_secret == "signing-secret-0123456789"
    assert fake.calls == ["arn:aws:secretsmanager:x:1:secret:sign"]


def test_secret_arns_operator_override_and_errors() -> None:
    fake = FakeSecrets({"arn:a": "from-store"})
    env = {
        "SYNCBOT_SECRET_ARNS": json.dumps({"A": "arn:a", "B": "arn:b", "C": "arn:c"}),
        "C": "set-by-operator",
    }
    with pytest.raises(ConfigError) as caught:
        lambda_handler.resolve_secret_arns(env, lambda: fake)
    assert caught.value.problems == ["B: cannot read secret arn:b (KeyError)"]
    assert env["A"] == "from-store" and env["C"] == "set-by-operator"
    assert "arn:c" not in fake.calls

    with pytest.raises(ConfigError, match="not valid JSON"):
        lambda_handler.resolve_secret_arns({"SYNCBOT_SECRET_ARNS": "{nope"}, lambda: fake)
    with pytest.raises(ConfigError, match="env name -> ARN"):
        lambda_handler.resolve_secret_arns({"SYNCBOT_SECRET_ARNS": "[1]"}, lambda: fake)
    assert lambda_handler.resolve_secret_arns({}, lambda: fake) == []


def test_a_field_of_a_json_secret() -> None:
    # RDS keeps its managed master password as a JSON secret; the stack names the field.
    fake = FakeSecrets({"arn:db": json.dumps({"username": "syncbot", "password": "s3cr3t"})})
    env = {
        "SYNCBOT_SECRET_ARNS": json.dumps(
            {"DATABASE_PASSWORD": "arn:db#password", "DATABASE_OTHER": "arn:db#missing"}
        )
    }
    with pytest.raises(ConfigError) as caught:
        lambda_handler.resolve_secret_arns(env, lambda: fake)
    assert caught.value.problems == ["DATABASE_OTHER: secret arn:db has no JSON field 'missing'"]
    assert env["DATABASE_PASSWORD"] == "s3cr3t"


def test_entries_import_without_infra_or_dev_packages(tmp_path: Path) -> None:
    # Block every package the runtime bundle does not ship; the entries must still import.
    blocked = [
        "boto3",
        "botocore",
        "yaml",
        "pulumi",
        "pulumi_aws",
        "pulumi_gcp",
        "pytest",
        "infra",
    ]
    script = (
        "import app.lambda_handler, app.web, app.cli, app.cli.serve\n"
        "from app.cli import build_parser\n"
        "build_parser()\n"
        "print('ok')\n"
    )
    done = run_without(blocked, script, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
