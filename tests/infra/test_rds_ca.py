"""The RDS CA bundle: checked before it ships, shipped in the Lambda zip, wired to the app."""

from __future__ import annotations

import datetime as dt
import hashlib
import zipfile
from pathlib import Path

import pulumi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infra.rds_ca import BUNDLE_MEMBER, LAMBDA_CA_PATH, CaBundleError, check_bundle
from stacks.mock_cloud import lambda_bundle, rds_ca_bundle
from tests.infra.aws.aws_stack_fixtures import run_stack, stack_file_config, with_dev_secrets
from tests.infra.conftest import MockRun

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _certificate(*, organization: str, common_name: str, ca: bool, days: int = 30) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(days=2 * abs(days)))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_the_rds_bundle_passes_and_can_be_pinned() -> None:
    pem = rds_ca_bundle()
    assert check_bundle(pem) == ["Amazon RDS mock-region-1 Root CA ECC384 G1"]
    assert check_bundle(pem, sha256=hashlib.sha256(pem).hexdigest())
    with pytest.raises(CaBundleError, match="SHA-256"):
        check_bundle(pem, sha256="0" * 64)


@pytest.mark.parametrize(
    ("pem", "reason"),
    [
        (b"<html>captive portal</html>", "no certificates|not a PEM"),
        (
            _certificate(organization="Evil Corp", common_name="Amazon RDS Root", ca=True),
            "not an Amazon RDS",
        ),
        (
            _certificate(
                organization="Amazon Web Services, Inc.", common_name="Amazon RDS", ca=False
            ),
            "not a CA",
        ),
        (
            _certificate(
                organization="Amazon Web Services, Inc.",
                common_name="Amazon RDS old",
                ca=True,
                days=-1,
            ),
            "valid now",
        ),
    ],
)
def test_anything_else_is_refused(pem: bytes, reason: str) -> None:
    with pytest.raises(CaBundleError, match=reason):
        check_bundle(pem)


def test_an_rds_bundle_plus_a_foreign_certificate_is_refused() -> None:
    foreign = _certificate(organization="Other", common_name="Some Root", ca=True)
    with pytest.raises(CaBundleError):
        check_bundle(rds_ca_bundle() + foreign)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> MockRun:
    bundle = lambda_bundle(tmp_path_factory.mktemp("ca") / "bundle.zip")
    return run_stack(with_dev_secrets(stack_file_config("Pulumi.dev.yaml")), bundle=bundle)


def test_the_function_verifies_rds_against_the_shipped_bundle(dev: MockRun) -> None:
    env = dev.one("aws:lambda/function:Function").inputs["environment"]["variables"]
    assert env["DATABASE_TLS_ENABLED"] == "true"
    # Lambda unpacks the zip at /var/task; the member is there, not in the system store.
    assert env["DATABASE_SSL_CA_PATH"] == LAMBDA_CA_PATH == f"/var/task/{BUNDLE_MEMBER}"


def test_a_bundle_without_the_rds_cas_is_a_config_error(tmp_path: Path) -> None:
    bundle = lambda_bundle(tmp_path / "bundle.zip", with_rds_ca=False)
    with zipfile.ZipFile(bundle) as archive:
        assert BUNDLE_MEMBER not in archive.namelist()
    config = with_dev_secrets(stack_file_config("Pulumi.dev.yaml"))
    # The program reports config problems to the engine as a RunError naming the fix.
    with pytest.raises(pulumi.RunError, match=r"has no certs/rds-ca-bundle\.pem.*--rds-ca"):
        run_stack(config, bundle=bundle)
