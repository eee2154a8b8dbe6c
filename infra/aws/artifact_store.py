"""``ArtifactStore``: the S3 bucket deploys upload app bundles to."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

BUNDLE_PREFIX = "bundles/"


@dataclass
class ArtifactStoreArgs:
    """Inputs of :class:`ArtifactStore`."""

    bundle_expiry_days: int = 90
    """Bundles are content-addressed and copied into Lambda at deploy, so old ones can go."""
    noncurrent_expiry_days: int = 30
    force_destroy: bool = False
    """Let ``pulumi destroy`` empty the bucket (dev stacks only)."""
    protect: bool = False
    """Production: a destroy or rename fails instead of deleting the bucket."""
    bucket_name: pulumi.Input[str] | None = None
    """A fixed name (see :func:`artifact_bucket_name`); default auto-named."""


class ArtifactStore(pulumi.ComponentResource):
    """A private, versioned, encrypted bucket whose old artifacts expire."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:aws:ArtifactStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            force_destroy=args.force_destroy,
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect
            ),
        )
        bucket_id = self.bucket.id
        self.public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        self.ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket_id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket_id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket_id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_id,
            rules=[
                {
                    "id": "expire-old-bundles",
                    "status": "Enabled",
                    "filter": {"prefix": BUNDLE_PREFIX},
                    "expiration": {"days": args.bundle_expiry_days},
                },
                {
                    "id": "expire-noncurrent-versions",
                    "status": "Enabled",
                    "filter": {},
                    "noncurrent_version_expiration": {
                        "noncurrent_days": args.noncurrent_expiry_days
                    },
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                },
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
        )
        self.tls_only = aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket_id,
            policy=self.bucket.arn.apply(_tls_only_policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access]),
        )
        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})


def artifact_bucket_name(prefix: str, account_id: str, region: str) -> str:
    """The artifact bucket's name: fixed, so the deploy policy naming it is known at preview.

    Bucket names are global; account and region make this one unique, and the prefix names the
    deployment (shortened to keep within the 63-character limit).
    """
    suffix = f"-artifacts-{account_id}-{region}"
    return f"{prefix[: 63 - len(suffix)].rstrip('-')}{suffix}"


def _tls_only_policy(bucket_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )
