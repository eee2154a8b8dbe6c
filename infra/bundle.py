"""Build the Lambda app bundle: locked wheels for the target plus the ``app`` package, zipped.

The zip is deterministic (sorted entries, fixed timestamps and permissions, no bytecode), so
its SHA-256 only changes when the lock, the target or the app's source change; Pulumi and the
migration step key on that hash. Builds are cached under ``.bundle-cache/`` by an input hash.

Run ``python -m infra.bundle --arch x86_64`` before ``pulumi up`` (CI does).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.rds_ca import BUNDLE_MEMBER, CaBundleError, check_bundle

ROOT = Path(__file__).resolve().parent.parent
PYTHON_VERSION = "3.12"
# Lambda's python3.12 runtime is Amazon Linux 2023 (glibc 2.34): any manylinux tag up to it runs.
GLIBC_TAGS = ("2_34", "2_31", "2_28", "2_27", "2_24", "2_17")
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}
SIZE_GOAL_BYTES = 25 * 1024 * 1024
# Zip timestamps cannot predate 1980; any fixed value makes the archive reproducible.
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# Level 6 zips ~3x faster than 9 for about 1% more size; the goal has ample headroom.
ZIP_LEVEL = 6
KEEP_CACHED_BUNDLES = 3
_SKIP_DIRS = frozenset({"__pycache__", "bin"})
_SKIP_SUFFIXES = (".pyc", ".pyo")
_MISSING = re.compile(r"No matching distribution found for ([A-Za-z0-9_.\-]+)")


class BundleError(RuntimeError):
    """The bundle cannot be built (a wheel is missing for the target, pip failed…)."""


@dataclass(frozen=True, slots=True)
class Bundle:
    """A built bundle."""

    path: Path
    sha256: str
    size_bytes: int
    unzipped_bytes: int
    files: int

    @property
    def base64_sha256(self) -> str:
        """The digest as Lambda's ``source_code_hash`` expects it."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode()


def platforms(arch: str) -> list[str]:
    """The pip ``--platform`` tags acceptable on Lambda for an architecture.

    Args:
        arch: ``x86_64`` or ``arm64``.

    Returns:
        manylinux tags, newest glibc first.

    Raises:
        BundleError: for an unknown architecture.
    """
    machine = MACHINES.get(arch)
    if machine is None:
        raise BundleError(f"unknown architecture {arch!r} (expected x86_64 or arm64)")
    return [f"manylinux_{tag}_{machine}" for tag in GLIBC_TAGS] + [f"manylinux2014_{machine}"]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _source_files(package: Path) -> Iterator[Path]:
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if (
            path.is_file()
            and not _SKIP_DIRS.intersection(rel.parts)
            and not path.name.endswith(_SKIP_SUFFIXES)
        ):
            yield path


def input_hash(requirements: Path, package: Path, arch: str) -> str:
    """Hash of everything a bundle is built from: the lock, the target and the app source."""
    digest = hashlib.sha256()
    digest.update(f"python{PYTHON_VERSION}/{arch}/zip{ZIP_LEVEL}\n".encode())
    digest.update(requirements.read_bytes())
    for path in _source_files(package):
        digest.update(path.relative_to(package.parent).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _pip() -> list[str]:
    """The pip to drive: this interpreter's, else one on PATH (it only downloads wheels for
    another platform, so any pip 22+ works; the venv may be built without pip)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    raise BundleError("pip not found: install pip in this environment or put pip3 on PATH")


def install_wheels(requirements: Path, target: Path, arch: str) -> None:
    """Installs the locked wheels for the Lambda target into ``target``.

    Raises:
        BundleError: naming the package when a wheel is missing for the target.
    """
    command = [
        *_pip(), "install", "--quiet", "--disable-pip-version-check",
        "--no-compile", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
        "--python-version", PYTHON_VERSION, "--target", str(target), "-r", str(requirements),
    ]  # fmt: skip
    for platform in platforms(arch):
        command += ["--platform", platform]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        missing = _MISSING.search(result.stderr)
        if missing:
            raise BundleError(
                f"no wheel of {missing.group(1)} for CPython {PYTHON_VERSION} on manylinux "
                f"{arch}: pin a version that publishes one or drop the dependency"
            )
        raise BundleError(f"pip failed ({result.returncode}):\n{result.stderr.strip()}")


def write_zip(destination: Path, *roots: Path) -> tuple[int, int]:
    """Zips directories deterministically into one archive (later roots win on a clash).

    Returns:
        The number of files and their total uncompressed size.
    """
    entries: dict[str, Path] = {}
    for root in roots:
        for path in _source_files(root):
            entries[path.relative_to(root).as_posix()] = path
    total = 0
    with zipfile.ZipFile(
        destination, "w", zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL
    ) as archive:
        for name in sorted(entries):
            path = entries[name]
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the permission bits below are honoured
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            data = path.read_bytes()
            archive.writestr(info, data, compresslevel=ZIP_LEVEL)
            total += len(data)
    return len(entries), total


def cached_wheels(requirements: Path, arch: str, cache_dir: Path) -> Path:
    """The locked wheels installed for the target, reused while the lock is unchanged.

    App source changes far more often than the lock; keeping this step separate makes
    rebuilding the bundle after an app change a matter of zipping.
    """
    digest = hashlib.sha256(f"python{PYTHON_VERSION}/{arch}\n".encode())
    digest.update(requirements.read_bytes())
    target = cache_dir / f"wheels-{arch}-{digest.hexdigest()[:16]}"
    if not target.is_dir():
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=cache_dir))
        try:
            install_wheels(requirements, partial / "site", arch)
            # Rename last so an interrupted install never leaves a half-filled cache entry.
            (partial / "site").rename(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return target


def _prune(cache_dir: Path, arch: str, *, keep: Path) -> None:
    """Drops all but the newest few bundles of an architecture (each is ~20 MB)."""
    bundles = sorted(
        cache_dir.glob(f"syncbot-lambda-{arch}-*.zip"), key=lambda p: p.stat().st_mtime
    )
    for old in bundles[:-KEEP_CACHED_BUNDLES]:
        if old != keep:
            old.unlink(missing_ok=True)


def build_bundle(
    arch: str = "x86_64",
    *,
    requirements: Path = ROOT / "requirements" / "runtime.txt",
    package: Path = ROOT / "app",
    cache_dir: Path = ROOT / ".bundle-cache",
    out: Path | None = None,
    rds_ca: Path | None = None,
) -> Bundle:
    """Builds (or reuses from the cache) the bundle for an architecture.

    Args:
        arch: ``x86_64`` or ``arm64``.
        requirements: The runtime lock (exact pins, generated for Python 3.12 on Linux).
        package: The app package to include.
        cache_dir: Where built bundles are kept by input hash.
        out: Also copy the bundle here (what the stack's ``awsBundlePath`` points at).
        rds_ca: The checked RDS CA bundle (:mod:`infra.rds_ca`), shipped as
            :data:`infra.rds_ca.BUNDLE_MEMBER` for ``DATABASE_SSL_CA_PATH``.

    Returns:
        The bundle.

    Raises:
        BundleError: when a wheel is missing for the target or pip fails.
    """
    platforms(arch)  # validate before any work
    ca_pem = None
    if rds_ca is not None:
        ca_pem = rds_ca.read_bytes()
        try:
            check_bundle(ca_pem)
        except CaBundleError as exc:
            raise BundleError(f"{rds_ca}: {exc}") from exc
    key = input_hash(requirements, package, arch)
    if ca_pem is not None:
        key = hashlib.sha256(f"{key}\n".encode() + ca_pem).hexdigest()
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / f"syncbot-lambda-{arch}-{key[:16]}.zip"
    if not cached.exists():
        wheels = cached_wheels(requirements, arch, cache_dir)
        with tempfile.TemporaryDirectory(prefix="syncbot-bundle-") as tmp:
            app_root = Path(tmp) / "app-root"
            shutil.copytree(
                package,
                app_root / package.name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"),
            )
            if ca_pem is not None:
                member = app_root / BUNDLE_MEMBER
                member.parent.mkdir(parents=True, exist_ok=True)
                member.write_bytes(ca_pem)
            partial = Path(tmp) / "bundle.zip"
            write_zip(partial, wheels, app_root)
            # Rename last so an interrupted build never leaves a half-written cache entry.
            shutil.move(partial, cached)
        _prune(cache_dir, arch, keep=cached)
    with zipfile.ZipFile(cached) as archive:
        infos = archive.infolist()
    bundle = Bundle(
        path=cached,
        sha256=file_sha256(cached),
        size_bytes=cached.stat().st_size,
        unzipped_bytes=sum(info.file_size for info in infos),
        files=len(infos),
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, out)
        bundle = Bundle(out, bundle.sha256, bundle.size_bytes, bundle.unzipped_bytes, bundle.files)
    return bundle


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build the bundle and report its size and hash."""
    parser = argparse.ArgumentParser(prog="python -m infra.bundle", description=__doc__)
    parser.add_argument("--arch", choices=sorted(MACHINES), default="x86_64")
    parser.add_argument("--out", type=Path, help="default build/syncbot-lambda-<arch>.zip")
    parser.add_argument(
        "--rds-ca",
        type=Path,
        help="RDS CA bundle to ship (python -m infra.rds_ca fetch FILE); needed by stacks "
        "that create their RDS database",
    )
    args = parser.parse_args(argv)
    out = args.out or ROOT / "build" / f"syncbot-lambda-{args.arch}.zip"
    try:
        bundle = build_bundle(args.arch, out=out, rds_ca=args.rds_ca)
    except BundleError as exc:
        print(f"bundle: {exc}", file=sys.stderr)
        return 1
    mib = bundle.size_bytes / (1024 * 1024)
    print(
        f"{bundle.path}: {mib:.1f} MiB zipped, {bundle.unzipped_bytes / 1048576:.1f} MiB "
        f"unzipped, {bundle.files} files, sha256 {bundle.sha256}"
    )
    if bundle.size_bytes > SIZE_GOAL_BYTES:
        print(f"bundle: over the {SIZE_GOAL_BYTES // 1048576} MiB goal", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
