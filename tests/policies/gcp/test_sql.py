from __future__ import annotations

import pytest

from policies.gcp import sql
from tests.policies.sdk import check_resource


def instance(**ip_configuration: object) -> dict:
    return {
        "databaseVersion": "POSTGRES_16",
        "settings": {
            "tier": "db-f1-micro",
            "edition": "ENTERPRISE",
            "ipConfiguration": ip_configuration,
        },
    }


PRIVATE = instance(
    ipv4Enabled=False, privateNetwork="projects/p/global/networks/n", sslMode="ENCRYPTED_ONLY"
)


def test_private_instance_with_ssl_passes() -> None:
    for policy in sql.POLICIES:
        assert check_resource(policy, sql.DATABASE_INSTANCE, PRIVATE) == []


def test_narrow_authorized_network_passes() -> None:
    props = instance(
        authorizedNetworks=[{"name": "office", "value": "203.0.113.0/24"}],
        sslMode="TRUSTED_CLIENT_CERTIFICATE_REQUIRED",
    )
    for policy in sql.POLICIES:
        assert check_resource(policy, sql.DATABASE_INSTANCE, props) == []


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "10.0.0.0/7", "::/0", "not-a-cidr"])
def test_open_authorized_network_is_reported(cidr: str) -> None:
    props = instance(authorizedNetworks=[{"value": cidr}], sslMode="ENCRYPTED_ONLY")
    assert check_resource(sql.no_open_networks, sql.DATABASE_INSTANCE, props) == [
        f"authorized network {cidr} opens the database to the internet."
    ]


@pytest.mark.parametrize("mode", ["ALLOW_UNENCRYPTED_AND_ENCRYPTED", None])
def test_unencrypted_connections_are_reported(mode: str | None) -> None:
    props = instance(ipv4Enabled=False, sslMode=mode)
    assert check_resource(sql.ssl_required, sql.DATABASE_INSTANCE, props) == [
        f"sslMode is {mode or 'unset'}; set ENCRYPTED_ONLY or TRUSTED_CLIENT_CERTIFICATE_REQUIRED."
    ]


def test_legacy_require_ssl_passes() -> None:
    props = instance(ipv4Enabled=False, requireSsl=True)
    assert check_resource(sql.ssl_required, sql.DATABASE_INSTANCE, props) == []


def test_shared_core_tier_without_edition_on_postgres_16_is_refused() -> None:
    # PostgreSQL 16 defaults to ENTERPRISE_PLUS, which offers no shared-core tier: the first
    # `pulumi up` would fail at create time.
    props = {**PRIVATE, "settings": {**PRIVATE["settings"], "tier": "db-g1-small"}}
    del props["settings"]["edition"]
    (message,) = check_resource(sql.edition_offers_tier, sql.DATABASE_INSTANCE, props)
    assert "ENTERPRISE_PLUS" in message and "db-g1-small" in message


@pytest.mark.parametrize(
    ("version", "tier", "edition", "ok"),
    [
        ("POSTGRES_16", "db-g1-small", "ENTERPRISE", True),
        ("POSTGRES_16", "db-perf-optimized-N-2", None, True),
        ("POSTGRES_16", "db-custom-2-7680", "ENTERPRISE_PLUS", False),
        ("MYSQL_8_0", "db-f1-micro", None, True),
        ("MYSQL_8_0", "db-perf-optimized-N-2", "ENTERPRISE", False),
    ],
)
def test_tier_and_edition_pairs(version: str, tier: str, edition: str | None, ok: bool) -> None:
    settings = {"tier": tier, **({"edition": edition} if edition else {})}
    props = {"databaseVersion": version, "settings": settings}
    found = check_resource(sql.edition_offers_tier, sql.DATABASE_INSTANCE, props)
    assert (found == []) is ok, found
