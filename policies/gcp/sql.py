"""Cloud SQL rules: no authorized network open to the internet, TLS required, a tier the
edition offers."""

from __future__ import annotations

import ipaddress

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from infra.gcp.sql_tiers import tier_problem
from policies.common import applies_to, as_list, get_path, resource_rule

DATABASE_INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"

# Modes that refuse unencrypted connections (ALLOW_UNENCRYPTED_AND_ENCRYPTED does not).
SSL_MODES: frozenset[str] = frozenset({"ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"})

# Anything this wide is "the internet" for practical purposes.
_MIN_PREFIX = {4: 8, 6: 32}


def open_networks(networks: object) -> list[str]:
    """The authorized network CIDRs wider than a /8 (IPv4) or /32 (IPv6), or unparsable."""
    found: list[str] = []
    for entry in as_list(networks):
        value = str(get_path(entry, "value", default=""))
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            found.append(value)
            continue
        if network.prefixlen < _MIN_PREFIX[network.version]:
            found.append(value)
    return found


@applies_to(DATABASE_INSTANCE)
def validate_no_open_networks(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report authorized networks that open a public IP to (nearly) everyone."""
    ip_config = get_path(args.props, "settings", "ipConfiguration", default={})
    if get_path(ip_config, "ipv4Enabled", default=True) is False:
        return
    for value in open_networks(get_path(ip_config, "authorizedNetworks")):
        report_violation(f"authorized network {value} opens the database to the internet.", None)


@applies_to(DATABASE_INSTANCE)
def validate_ssl_required(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Report an instance that accepts unencrypted connections."""
    ip_config = get_path(args.props, "settings", "ipConfiguration", default={})
    mode = get_path(ip_config, "sslMode")
    if mode in SSL_MODES or (mode is None and get_path(ip_config, "requireSsl") is True):
        return
    report_violation(
        f"sslMode is {mode or 'unset'}; set ENCRYPTED_ONLY or "
        "TRUSTED_CLIENT_CERTIFICATE_REQUIRED.",
        None,
    )


@applies_to(DATABASE_INSTANCE)
def validate_edition_offers_tier(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report a tier the instance's edition refuses (an unset edition is the version's default).

    Cloud SQL refuses such an instance at create time, after the preview passed: the first
    ``pulumi up`` fails. Judged on the effective edition, so an unset one counts as what
    Cloud SQL would pick.
    """
    tier = get_path(args.props, "settings", "tier")
    version = get_path(args.props, "databaseVersion")
    if tier is None or version is None:
        return
    edition = get_path(args.props, "settings", "edition")
    problem = tier_problem(str(tier), str(edition) if edition else None, str(version))
    if problem is not None:
        report_violation(f"Cloud SQL would refuse this instance: {problem}.", None)


no_open_networks = resource_rule(
    name="syncbot-gcp-sql-no-open-networks",
    description="Cloud SQL must not authorize internet-wide networks.",
    validate=validate_no_open_networks,
    severity=Severity.CRITICAL,
)

ssl_required = resource_rule(
    name="syncbot-gcp-sql-ssl-required",
    description="Cloud SQL must require encrypted connections.",
    validate=validate_ssl_required,
    severity=Severity.HIGH,
)

edition_offers_tier = resource_rule(
    name="syncbot-gcp-sql-edition-offers-tier",
    description="A Cloud SQL instance's tier must be one its (effective) edition offers.",
    validate=validate_edition_offers_tier,
    severity=Severity.HIGH,
)

POLICIES = (no_open_networks, ssl_required, edition_offers_tier)
