"""Merge the feature branches (Matrix, health, federation) into one head.

Revision ID: 0005_merge_features
Revises: 0002_matrix, 0003_health, 0004_federation
"""

from __future__ import annotations

revision = "0005_merge_features"
down_revision = ("0002_matrix", "0003_health", "0004_federation")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # a merge point only: later revisions build on one head


def downgrade() -> None:
    pass
