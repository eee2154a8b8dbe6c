"""Every rule of the pack, in one tuple for ``__main__`` and for offline evaluation.

Importing this never starts the analyzer: only ``policies/__main__.py`` builds the PolicyPack.
"""

from __future__ import annotations

from pulumi_policy import Policy

from policies.aws import cloudwatch, iam, lambda_function, rds, s3, sqs
from policies.gcp import cloudrun, cloudtasks, sql, storage
from policies.gcp import iam as gcp_iam
from policies.stack import outputs, protection, wiring

POLICIES: tuple[Policy, ...] = (
    *rds.POLICIES,
    *s3.POLICIES,
    *lambda_function.POLICIES,
    *iam.POLICIES,
    *cloudwatch.POLICIES,
    *sqs.POLICIES,
    *sql.POLICIES,
    *storage.POLICIES,
    *gcp_iam.POLICIES,
    *cloudrun.POLICIES,
    *cloudtasks.POLICIES,
    *outputs.POLICIES,
    *wiring.POLICIES,
    *protection.POLICIES,
)

PACK_NAME = "syncbot"
