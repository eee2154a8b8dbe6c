from __future__ import annotations

from policies.gcp import storage
from tests.policies.sdk import check_resource

SECURE = {"location": "EU", "publicAccessPrevention": "enforced", "uniformBucketLevelAccess": True}


def test_enforced_bucket_passes() -> None:
    assert check_resource(storage.public_access_prevention, storage.BUCKET, SECURE) == []


def test_inherited_prevention_and_fine_grained_acls_are_reported() -> None:
    props = {"location": "EU", "publicAccessPrevention": "inherited"}
    assert check_resource(storage.public_access_prevention, storage.BUCKET, props) == [
        "publicAccessPrevention is inherited, not enforced.",
        "uniformBucketLevelAccess is not true.",
    ]
