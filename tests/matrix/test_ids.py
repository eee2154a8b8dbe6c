"""Ghost ids, portal aliases, the namespace, and the registration file derived from them."""

from __future__ import annotations

import re

import pytest
import yaml

from app.cli import matrix as matrix_cli
from app.core.endpoints import Endpoint
from app.errors import ConfigError
from app.matrix.ids import BridgeIds
from app.matrix.registration import registration_yaml
from tests.conftest import local_settings

IDS = BridgeIds(server_name="hs.example")


def test_ghost_ids_carry_the_workspace() -> None:
    assert IDS.slack_ghost("T123", "U456") == "@slack_t123_u456:hs.example"
    assert IDS.slack_ghost("T1", "U1") != IDS.slack_ghost("T2", "U1")
    assert IDS.ghost_for(Endpoint.slack("T1", "C1"), "T1/U9") == "@slack_t1_u9:hs.example"
    peer = IDS.ghost_for(Endpoint.parse("peer:inst-1/slack:T1/C1"), "T1/U9")
    assert re.fullmatch(r"@slack_peer_[0-9a-f]{20}:hs\.example", peer)
    assert IDS.is_ours(peer) and IDS.is_ours("@slackbot:hs.example")
    assert not IDS.is_ours("@alice:hs.example") and not IDS.is_ours("@slack_x:other.example")


def test_custom_template() -> None:
    ids = BridgeIds(server_name="hs.example", ghost_template="sl.{team}.{user}")
    assert ids.slack_ghost("T1", "U1") == "@sl.t1.u1:hs.example"
    assert ids.prefix == "sl."


def test_portal_alias_round_trip() -> None:
    endpoint = Endpoint.slack("T1", "C42")
    alias = IDS.portal_alias(endpoint)
    assert alias == "#slack_t1_c42:hs.example"
    assert IDS.endpoint_for_alias(alias) == endpoint
    assert IDS.endpoint_for_alias("#other:hs.example") is None


def settings(**extra: object):
    return local_settings(
        matrix_homeserver_url="http://hs:8008",
        matrix_server_name="hs.example",
        matrix_as_token="as-token-0123456789",
        matrix_hs_token="hs-token-0123456789",
        **extra,
    )


def test_registration_matches_the_settings() -> None:
    reg = yaml.safe_load(registration_yaml(settings(), url="http://bridge:3000/"))
    assert reg["id"] == "slack" and reg["url"] == "http://bridge:3000"
    assert reg["as_token"] == "as-token-0123456789"
    assert reg["hs_token"] == "hs-token-0123456789"
    assert reg["sender_localpart"] == "slackbot" and reg["rate_limited"] is False
    users = reg["namespaces"]["users"][0]
    assert users["exclusive"] is True
    assert re.fullmatch(users["regex"], IDS.slack_ghost("T1", "U1"))
    assert not re.fullmatch(users["regex"], "@slack_t1_u1:hs.example.evil")
    alias = reg["namespaces"]["aliases"][0]["regex"]
    assert re.fullmatch(alias, IDS.portal_alias(Endpoint.slack("T1", "C1")))


def test_registration_needs_tokens_and_url() -> None:
    with pytest.raises(ConfigError) as err:
        registration_yaml(local_settings(matrix_server_name="hs.example"))
    assert len(err.value.problems) == 3


def test_cli_prints_registration(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(matrix_cli, "settings_or_exit", settings)
    parser_args = type("Args", (), {"url": "http://bridge:3000", "generate": False})()
    assert matrix_cli.run(parser_args) == 0  # type: ignore[arg-type]
    assert yaml.safe_load(capsys.readouterr().out)["url"] == "http://bridge:3000"
    monkeypatch.setattr(matrix_cli, "settings_or_exit", lambda: local_settings())
    assert matrix_cli.run(parser_args) == 2  # type: ignore[arg-type]
