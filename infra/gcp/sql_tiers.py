"""Which Cloud SQL machine tiers each edition accepts, checked before anything is created.

Cloud SQL has two editions (https://cloud.google.com/sql/docs/editions-intro): Enterprise Plus
runs only the performance-optimized ``db-perf-optimized-N-<vCPUs>`` tiers; Enterprise runs the
shared-core (``db-f1-micro``, ``db-g1-small``) and custom/predefined (``db-custom-…``,
``db-n1-…``) tiers. An instance created without ``settings.edition`` gets the version's
default, and for PostgreSQL 16 (and MySQL 8.4) that default is Enterprise Plus, so a shared-core
tier fails at create time. Programs therefore always set the edition, and this module is the
one place the valid pairs are written down (stack config, component and policy pack use it).
"""

from __future__ import annotations

from typing import Literal

Edition = Literal["ENTERPRISE", "ENTERPRISE_PLUS"]
EDITIONS: tuple[Edition, ...] = ("ENTERPRISE", "ENTERPRISE_PLUS")

SHARED_CORE_TIERS: frozenset[str] = frozenset({"db-f1-micro", "db-g1-small"})
_PLUS_PREFIX = "db-perf-optimized-N-"
_ENTERPRISE_PREFIXES: tuple[str, ...] = ("db-custom-", "db-n1-", "db-f1-", "db-g1-")
# Versions whose default edition is Enterprise Plus (an unset edition means this).
_PLUS_BY_DEFAULT: frozenset[str] = frozenset({"POSTGRES_16", "POSTGRES_17", "MYSQL_8_4"})


def default_edition(database_version: str) -> Edition:
    """The edition Cloud SQL picks when ``settings.edition`` is unset."""
    return "ENTERPRISE_PLUS" if database_version in _PLUS_BY_DEFAULT else "ENTERPRISE"


def edition_for_tier(tier: str) -> Edition:
    """The edition a tier runs on (what to set when only the tier was chosen)."""
    return "ENTERPRISE_PLUS" if tier.startswith(_PLUS_PREFIX) else "ENTERPRISE"


def tier_problem(tier: str, edition: str | None, database_version: str) -> str | None:
    """Why Cloud SQL would refuse this tier, edition and version, or ``None`` if it accepts it.

    Args:
        tier: ``settings.tier``.
        edition: ``settings.edition``; ``None`` means the version's default applies.
        database_version: ``POSTGRES_16``, ``MYSQL_8_0``…

    Returns:
        A sentence naming the conflict, or ``None``.
    """
    effective = edition or default_edition(database_version)
    if effective not in EDITIONS:
        return f"unknown Cloud SQL edition {effective!r} (ENTERPRISE or ENTERPRISE_PLUS)"
    unset = "" if edition else f" (unset: {database_version} defaults to {effective})"
    if effective == "ENTERPRISE_PLUS" and not tier.startswith(_PLUS_PREFIX):
        return (
            f"tier {tier!r} is not offered on ENTERPRISE_PLUS{unset}; use a "
            f"{_PLUS_PREFIX}<vCPUs> tier or edition ENTERPRISE"
        )
    if effective == "ENTERPRISE" and not tier.startswith(_ENTERPRISE_PREFIXES):
        return f"tier {tier!r} is not offered on ENTERPRISE{unset}"
    return None
