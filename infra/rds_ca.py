"""The Amazon RDS certificate authorities, shipped inside the Lambda bundle.

The Lambda runtime's system trust store does not hold the RDS CAs, so a client that verifies
the database certificate (the app always does: ``sslmode=verify-full`` / ``ssl_verify_cert``)
fails against the system bundle. The app reads ``DATABASE_SSL_CA_PATH`` instead; the AWS stack
points it at :data:`BUNDLE_MEMBER` inside the function's code directory.

Where the certificates come from: no maintained PyPI package ships them, so the bundle build
fetches AWS's published global bundle (:data:`GLOBAL_BUNDLE_URL`, over HTTPS) in CI, where the
deploy runs, and checks what it got before using it: every block parses as an X.509 CA
certificate issued by Amazon for RDS, each one is self-signed or issued by another certificate
of the bundle, at least one is valid now, and, when the repository pins it
(``RDS_CA_BUNDLE_SHA256``), the file's SHA-256 matches. A tampered or truncated download fails
the build instead of shipping.

``python -m infra.rds_ca fetch build/rds-ca-bundle.pem [--sha256 HEX]`` fetches and checks;
``python -m infra.bundle --rds-ca build/rds-ca-bundle.pem`` puts it in the bundle.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

GLOBAL_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
# Inside the zip; Lambda unpacks the code at /var/task.
BUNDLE_MEMBER = "certs/rds-ca-bundle.pem"
LAMBDA_CODE_DIR = "/var/task"
LAMBDA_CA_PATH = f"{LAMBDA_CODE_DIR}/{BUNDLE_MEMBER}"
_ISSUER_ORG = "Amazon Web Services, Inc."
_MAX_BYTES = 2 * 1024 * 1024


class CaBundleError(ValueError):
    """The CA bundle is not the RDS CA bundle; the message says why."""


def check_bundle(
    pem: bytes, *, sha256: str | None = None, now: dt.datetime | None = None
) -> list[str]:
    """Check that ``pem`` is an RDS CA bundle.

    Args:
        pem: The file's bytes.
        sha256: Hex digest the file must have (a pinned download), if any.
        now: The time validity is judged at (default: now).

    Returns:
        The subjects' common names, in file order.

    Raises:
        CaBundleError: On a digest mismatch, no certificates, a non-CA or non-RDS certificate,
            an issuer outside the bundle, or no certificate valid now.
    """
    if sha256 is not None and hashlib.sha256(pem).hexdigest() != sha256.lower():
        raise CaBundleError("SHA-256 does not match the pinned digest")
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise CaBundleError(f"not a PEM certificate bundle: {exc}") from exc
    if not certificates:
        raise CaBundleError("no certificates")
    subjects = {cert.subject.rfc4514_string() for cert in certificates}
    names: list[str] = []
    moment = now or dt.datetime.now(dt.UTC)
    valid_now = False
    for cert in certificates:
        name = _common_name(cert)
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            raise CaBundleError(f"{name!r} is not a CA certificate")
        organizations = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        if [a.value for a in organizations] != [_ISSUER_ORG] or "RDS" not in name:
            raise CaBundleError(f"{name!r} is not an Amazon RDS certificate authority")
        if cert.issuer.rfc4514_string() not in subjects:
            raise CaBundleError(f"{name!r} is issued by a CA outside the bundle")
        valid_now = valid_now or (cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc)
        names.append(name)
    if not valid_now:
        raise CaBundleError("no certificate of the bundle is valid now")
    return names


def _common_name(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else cert.subject.rfc4514_string()


def fetch(destination: Path, *, sha256: str | None = None, url: str = GLOBAL_BUNDLE_URL) -> int:
    """Download the bundle, check it, and write it (only once it passed).

    Returns:
        The number of certificates.

    Raises:
        CaBundleError: When the download is not the RDS CA bundle.
        OSError: When the download fails.
    """
    if not url.startswith("https://"):
        raise CaBundleError("the bundle must be fetched over HTTPS")
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - https only
        pem = response.read(_MAX_BYTES + 1)
    if len(pem) > _MAX_BYTES:
        raise CaBundleError("the download is larger than any CA bundle")
    names = check_bundle(pem, sha256=sha256)
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(pem)
    return len(names)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``fetch DEST [--sha256 HEX]`` or ``check FILE [--sha256 HEX]``."""
    parser = argparse.ArgumentParser(prog="python -m infra.rds_ca", description=__doc__)
    parser.add_argument("command", choices=("fetch", "check"))
    parser.add_argument("path", type=Path)
    parser.add_argument("--sha256", help="pinned SHA-256 of the bundle file")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            count = fetch(args.path, sha256=args.sha256 or None)
        else:
            count = len(check_bundle(args.path.read_bytes(), sha256=args.sha256 or None))
    except (CaBundleError, OSError) as exc:
        print(f"rds-ca: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.path}: {count} RDS CA certificates, sha256 "
        f"{hashlib.sha256(args.path.read_bytes()).hexdigest()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
