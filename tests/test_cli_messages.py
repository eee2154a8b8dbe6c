"""What the ``syncbot`` command says in the cases a newcomer hit (issue 20): the right culprit,
the local database of ``make run``, one line per problem, and no JSON among human output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.settings import ENV_NAMES, FILE_ENV_NAMES, LOCAL_DATA_DIR, SQLITE_FILE
from app.store.keyfile import DEV_KEY_FILE
from fakeslack import FakeSlack
from tests.conftest import TEST_KEY


@pytest.fixture
def here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (*ENV_NAMES, *FILE_ENV_NAMES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def local(here: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A migrated database with a key, as an operator's shell has it."""
    monkeypatch.setenv("DATABASE_BACKEND", "sqlite")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{here / 'ops.db'}")
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEY", TEST_KEY)
    assert main(["migrate"]) == 0
    return here


def test_the_command_finds_the_database_and_key_make_run_uses(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # What `make run` sets up: LOCAL_DEVELOPMENT with SYNCBOT_DATA_DIR=.syncbot-data.
    monkeypatch.setenv("LOCAL_DEVELOPMENT", "true")
    monkeypatch.setenv("SYNCBOT_DATA_DIR", LOCAL_DATA_DIR)
    assert main(["migrate"]) == 0
    assert main(["sync", "create", "general"]) == 0
    assert (here / LOCAL_DATA_DIR / DEV_KEY_FILE).is_file()
    capsys.readouterr()

    # A fresh shell in the same directory: no variable at all.
    monkeypatch.delenv("LOCAL_DEVELOPMENT")
    monkeypatch.delenv("SYNCBOT_DATA_DIR")
    assert main(["sync", "list", "--json"]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)] == ["general"]
    # ... and with LOCAL_DEVELOPMENT alone, still that database, no second one or second key.
    monkeypatch.setenv("LOCAL_DEVELOPMENT", "true")
    assert main(["sync", "list", "--json"]) == 0
    assert [s["name"] for s in json.loads(capsys.readouterr().out)] == ["general"]
    assert not (here / SQLITE_FILE).exists() and not (here / DEV_KEY_FILE).exists()


def test_the_dev_key_file_is_git_ignored() -> None:
    ignored = (Path(__file__).parents[1] / ".gitignore").read_text().split()
    assert DEV_KEY_FILE in ignored and f"{LOCAL_DATA_DIR}/" in ignored


def test_sync_add_to_matrix_without_matrix_configured_is_refused(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "create", "x"]) == 0
    assert main(["sync", "add", "x", "matrix:!r:example.org"]) == 1
    err = capsys.readouterr().err
    assert "the Matrix bridge is not configured here" in err
    assert "MATRIX_HOMESERVER_URL" in err and "registration --generate" in err
    assert main(["sync", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["endpoints"] == []


def test_sync_add_to_an_unknown_sync_names_the_sync(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "add", "nosuch", "slack:T1/C1"]) == 1
    err = capsys.readouterr().err
    assert "there is no sync named 'nosuch'" in err
    assert "syncbot sync create nosuch" in err
    assert "workspace" not in err


def test_sync_add_to_a_peer_without_federation_is_refused(
    local: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "create", "x"]) == 0
    assert main(["sync", "add", "x", "peer:inst-2/slack:T9/C9"]) == 1
    assert "SYNCBOT_FEDERATION_ENABLED=true" in capsys.readouterr().err


def test_workspace_add_tells_a_dns_failure_from_a_slack_refusal(
    local: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # RFC 6761: names under .invalid never resolve.
    monkeypatch.setenv("SLACK_API_URL", "http://slack.syncbot-test.invalid/api/")
    assert main(["workspace", "add", "--bot-token", "xoxb-1-2-abc"]) == 1
    err = capsys.readouterr().err
    assert "cannot resolve the slack server's host name" in err
    assert "SLACK_API_URL" in err and "refused" not in err

    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:1/api/")
    assert main(["workspace", "add", "--bot-token", "xoxb-1-2-abc"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the slack server" in err and "refused the request" not in err

    with FakeSlack() as slack:
        slack.add_workspace("T1", "Acme")
        monkeypatch.setenv("SLACK_API_URL", slack.base_url)
        assert main(["workspace", "add", "--bot-token", "xoxb-wrong"]) == 1
    err = capsys.readouterr().err
    assert "slack refused the request" in err and "invalid_auth" in err
    assert "the token is not valid" in err


def test_cli_output_has_no_json_log_lines(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # LOCAL_DEVELOPMENT generates a key and says so: as a line of text, not a JSON object.
    monkeypatch.setenv("LOCAL_DEVELOPMENT", "true")
    assert main(["migrate"]) == 0
    assert main(["sync", "create", "x"]) == 0
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    assert any("generated a local development key" in line for line in lines)
    assert not [line for line in lines if line.lstrip().startswith("{")]
    assert "created sync x" in captured.out


def test_log_format_json_is_kept_when_asked(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOCAL_DEVELOPMENT", "true")
    monkeypatch.setenv("LOG_FORMAT", "json")
    with pytest.raises(SystemExit):
        main(["sync", "list"])  # not migrated yet
    err = capsys.readouterr().err
    [entry] = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert entry["message"].startswith("TOKEN_ENCRYPTION_KEY not set")


def test_check_names_the_token_key_once_with_how_to_make_one(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check"]) == 1
    err = capsys.readouterr().err
    assert err.count("TOKEN_ENCRYPTION_KEY") == 1
    assert "secrets.token_urlsafe" in err


def test_check_verifies_boto3_when_dispatching_through_sqs(
    local: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    monkeypatch.setenv("SYNCBOT_DISPATCH", "sqs")
    monkeypatch.setenv("SYNCBOT_DELIVERY_QUEUE", "https://sqs.eu-west-1.amazonaws.com/1/q.fifo")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "boto3" else real(name, *a)
    )
    assert main(["check"]) == 1
    assert "SYNCBOT_DISPATCH=sqs needs boto3" in capsys.readouterr().err

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert 'aws = ["boto3' in pyproject


def test_registration_generate_makes_tokens_env_lines_and_the_file(
    here: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import stat

    import yaml

    argv = ["registration", "--generate", "--url", "http://syncbot:3000"]
    assert main([*argv, "--out", "reg.yaml"]) == 2  # no server name anywhere
    assert "--server-name" in capsys.readouterr().err
    assert (
        main(
            [
                *argv,
                "--server-name",
                "example.org",
                "--homeserver-url",
                "http://synapse:8008",
                "--out",
                "reg.yaml",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    env = dict(line.split("=", 1) for line in out.splitlines())
    assert set(env) == {
        "MATRIX_HOMESERVER_URL",
        "MATRIX_SERVER_NAME",
        "MATRIX_AS_TOKEN",
        "MATRIX_HS_TOKEN",
    }
    assert env["MATRIX_AS_TOKEN"] != env["MATRIX_HS_TOKEN"] and len(env["MATRIX_HS_TOKEN"]) >= 32
    reg = here / "reg.yaml"
    assert stat.S_IMODE(reg.stat().st_mode) == 0o600
    data = yaml.safe_load(reg.read_text())
    assert (
        data["as_token"] == env["MATRIX_AS_TOKEN"] and data["hs_token"] == env["MATRIX_HS_TOKEN"]
    )
    assert data["url"] == "http://syncbot:3000"
    # Those lines are a working configuration: the plain command prints the same file.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SYNCBOT_PUBLIC_URL", "http://syncbot:3000")
    assert main(["registration"]) == 0
    assert capsys.readouterr().out == reg.read_text()
    # A second --generate makes new tokens (never reuses).
    assert main([*argv, "--server-name", "example.org"]) == 0
    again = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert again["MATRIX_AS_TOKEN"] != env["MATRIX_AS_TOKEN"]
