"""The offline plan: a stack's resources and policy results without the CLI or a cloud.

``python -m stacks.plan CONFIG_FILE [--json]`` runs the Pulumi program under the mock runtime
with the config of a stack file (``Pulumi.dev.yaml``, ``stacks/examples/aws.yaml``), records
every registration, runs the policy pack over it (:mod:`policies.evaluate`) and prints the
resource tree and the findings. Secret values never reach the output: secure config becomes a
placeholder and anything the program marks secret is shown as ``[secret]``.

Exit status: 0 clean (advisories allowed), 1 a mandatory violation, 2 a config or program error.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import runpy
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from policies.evaluate import Violation

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "__main__.py"
MASK = "[secret]"
ACCOUNT_ID = "123456789012"

# Signatures the engine uses inside property structs (pulumi/sdk/go/common/resource/sig).
_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
_ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"

EXIT_OK, EXIT_VIOLATION, EXIT_CONFIG = 0, 1, 2

# Stands in for a provider-issued CA certificate that programs copy into config or secrets.
_PLACEHOLDER_PEM = "-----BEGIN CERTIFICATE-----\nb2ZmbGluZS1wbGFu\n-----END CERTIFICATE-----\n"


class PlanError(Exception):
    """The stack file or the program cannot be planned; the message says why."""


@dataclass(frozen=True, slots=True)
class StackFile:
    """A stack file's config, split the way the engine hands it to a program."""

    path: Path
    stack: str
    project: str
    raw: Mapping[str, Any]
    """Config keys to YAML values, ``{"secure": ...}`` for encrypted ones."""
    values: Mapping[str, str]
    """Config keys to engine strings; secure values replaced by placeholders."""
    secret_keys: frozenset[str]


def _project_name() -> str:
    try:
        document = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    except FileNotFoundError:
        return "syncbot"
    return str(document.get("name", "syncbot")) if isinstance(document, Mapping) else "syncbot"


def _engine_value(value: Any) -> str:
    # The engine passes structured config as JSON text and YAML scalars as their text form.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _placeholder(key: str) -> str:
    # Deterministic, long enough for length checks, obviously not a real credential.
    return "offline-plan-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def read_stack_file(path: Path, *, stack: str | None = None) -> StackFile:
    """Read a stack file and split its config into engine values and secret keys.

    Args:
        path: ``Pulumi.<stack>.yaml`` or any YAML file with a ``config:`` mapping.
        stack: Stack name; defaults to ``<stack>`` of ``Pulumi.<stack>.yaml`` or the file stem.

    Returns:
        The parsed stack file.

    Raises:
        PlanError: The file is missing, not YAML, or has no ``config:`` mapping.
    """
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PlanError(f"{path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise PlanError(f"{path}: not valid YAML: {exc}") from exc
    config = document.get("config") if isinstance(document, Mapping) else None
    if not isinstance(config, Mapping):
        raise PlanError(f"{path}: no 'config:' mapping")
    project = _project_name()
    raw: dict[str, Any] = {}
    for key, value in config.items():
        # Keys without a namespace belong to the project, as in the CLI.
        raw[str(key) if ":" in str(key) else f"{project}:{key}"] = value
    values: dict[str, str] = {}
    secret_keys: set[str] = set()
    for key, value in raw.items():
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            values[key] = _placeholder(key)
            secret_keys.add(key)
        else:
            values[key] = _engine_value(value)
    name = stack or (
        path.name[len("Pulumi.") : -len(".yaml")]
        if path.name.startswith("Pulumi.") and path.name.endswith(".yaml")
        else path.stem
    )
    return StackFile(path, name, project, raw, values, frozenset(secret_keys))


def with_required_secrets(stack: StackFile) -> tuple[StackFile, list[str]]:
    """Stand in placeholders for required secrets the file does not hold.

    Operators keep those secrets in their own stack (``pulumi config set --secret``), encrypted
    with a key the plan cannot use anyway, so a committed file without them plans the same as
    one with them; the plan says which ones it assumed.

    Returns:
        The completed stack file and one note per secret assumed.
    """
    from stacks.config import NAMESPACE, REQUIRED_APP_SECRETS

    if stack.raw.get(f"{NAMESPACE}:kind", "app") != "app":
        return stack, []
    absent = [
        f"{NAMESPACE}:{k}" for k in REQUIRED_APP_SECRETS if f"{NAMESPACE}:{k}" not in stack.raw
    ]
    if not absent:
        return stack, []
    raw = {**stack.raw, **{key: {"secure": "offline-plan"} for key in absent}}
    values = {**stack.values, **{key: _placeholder(key) for key in absent}}
    completed = StackFile(
        stack.path, stack.stack, stack.project, raw, values, stack.secret_keys | set(absent)
    )
    return completed, [f"{key} is not in the file; planned with a placeholder" for key in absent]


def plain(value: Any, *, mask: bool) -> Any:
    """Convert a wire value to plain JSON-able data.

    Args:
        value: A deserialized property (may hold secret, asset, archive or reference markers).
        mask: Replace secret values by ``[secret]`` (for display) instead of unwrapping them.

    Returns:
        Plain data: secrets masked or unwrapped, assets and archives described, resource
        references as their URN, whole floats as integers.
    """
    if isinstance(value, Mapping):
        sig = value.get(_SIG)
        if sig == _SECRET_SIG:
            return MASK if mask else plain(value.get("value"), mask=mask)
        if sig == _ASSET_SIG or sig == _ARCHIVE_SIG:
            kind = "asset" if sig == _ASSET_SIG else "archive"
            where = value.get("path") or value.get("uri") or ("<text>" if "text" in value else "")
            return f"{kind}({where or '<assets>'})"
        if sig == _RESOURCE_SIG:
            return value.get("urn")
        if sig == _OUTPUT_SIG:
            if value.get("secret") and mask:
                return MASK
            return plain(value.get("value"), mask=mask)
        return {str(k): plain(v, mask=mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, mask=mask) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # assets and archives as SDK objects


def _computed(typ: str, name: str, inputs: Mapping[str, Any], region: str) -> dict[str, Any]:
    """Plausible provider-computed outputs, so a program's ``apply`` chains can run."""
    digest = hashlib.sha256(f"{typ}/{name}".encode()).hexdigest()
    service = typ.split(":")[1].split("/")[0] if typ.count(":") >= 2 else "mock"
    arn = f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{name}"
    out: dict[str, Any] = {
        "name": inputs.get("name", f"{name}-{digest[:7]}"),
        "arn": arn,
        "endpoint": f"{name}.{digest[:10]}.{region}.example.internal",
        "uri": f"https://{name}-{digest[:8]}.a.run.app",
        "url": f"https://{name}-{digest[:8]}.example.test",
    }
    match typ:
        case "aws:lambda/function:Function":
            out["arn"] = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"
            out["invokeArn"] = (
                f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/"
                f"{out['arn']}/invocations"
            )
            out["qualifiedArn"] = f"{out['arn']}:1"
        case "aws:lambda/functionUrl:FunctionUrl":
            out["functionUrl"] = f"https://{digest[:26]}.lambda-url.{region}.on.aws/"
        case "aws:apigatewayv2/api:Api":
            out["apiEndpoint"] = f"https://{digest[:10]}.execute-api.{region}.amazonaws.com"
            out["executionArn"] = f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{digest[:10]}"
        case "aws:rds/instance:Instance" | "aws:rds/cluster:Cluster":
            default_port = 5432 if "postgres" in str(inputs.get("engine", "")) else 3306
            out["address"] = f"{name}.{digest[:12]}.{region}.rds.amazonaws.com"
            out["port"] = inputs.get("port") or default_port
            secret = f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:rds!{name}"
            out["masterUserSecrets"] = [{"secretArn": secret}]
        case "aws:iam/role:Role":
            out["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{out['name']}"
        case "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = str(inputs.get("url", "")).removeprefix("https://")
            out["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{host}"
        case "aws:s3/bucket:Bucket":
            out["bucket"] = inputs.get("bucket", f"{name}-{digest[:7]}")
            out["arn"] = f"arn:aws:s3:::{out['bucket']}"
        case "aws:secretsmanager/secret:Secret":
            out["arn"] = f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:{name}-{digest[:6]}"
        case "aws:sqs/queue:Queue":
            out["arn"] = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{out['name']}"
            out["url"] = f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{out['name']}"
        case "gcp:serviceaccount/account:Account":
            project = inputs.get("project", "project")
            out["email"] = f"{inputs.get('accountId', name)}@{project}.iam.gserviceaccount.com"
            out["member"] = f"serviceAccount:{out['email']}"
        case "gcp:sql/databaseInstance:DatabaseInstance":
            out["connectionName"] = f"project:{region}:{out['name']}"
            out["privateIpAddress"] = "10.8.0.3"
            out["serverCaCerts"] = [{"cert": _PLACEHOLDER_PEM, "commonName": "offline-plan-ca"}]
        case "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
            pool = inputs.get("workloadIdentityPoolId", name)
            out["name"] = f"projects/123456789/locations/global/workloadIdentityPools/{pool}"
        case "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider":
            out["name"] = (
                "projects/123456789/locations/global/workloadIdentityPools/"
                f"{inputs.get('workloadIdentityPoolId')}/providers/"
                f"{inputs.get('workloadIdentityPoolProviderId')}"
            )
        case "gcp:secretmanager/secretVersion:SecretVersion":
            out["version"] = "1"
            out["name"] = f"{inputs.get('secret')}/versions/1"
        case "gcp:artifactregistry/repository:Repository":
            out["name"] = inputs.get("repositoryId", name)
        case "docker-build:index:Image":
            out["digest"] = f"sha256:{digest}"
            tags = inputs.get("tags") or [f"{name}:latest"]
            out["ref"] = f"{tags[0]}@sha256:{digest}"
        case "random:index/randomPassword:RandomPassword" | "random:index/randomId:RandomId":
            out["result"] = digest[: int(inputs.get("length", 32))]
            out["hex"] = digest[: 2 * int(inputs.get("byteLength", 8))]
    return out


def _call(token: str, args: Mapping[str, Any], region: str) -> dict[str, Any]:
    """Answers to the provider functions the programs use."""
    match token:
        case "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/plan"}
        case "aws:index/getRegion:getRegion":
            return {"region": region, "name": region, "id": region}
        case "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}
        case "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": [f"{region}{z}" for z in "abc"], "zoneIds": ["az1", "az2", "az3"]}
        case "gcp:organizations/getProject:getProject":
            return {"number": "123456789", "projectId": args.get("projectId", "project")}
        case "gcp:organizations/getClientConfig:getClientConfig":
            return {"accessToken": "offline-plan", "project": "project", "region": region}
    return {}


@dataclass(frozen=True, slots=True)
class Recorded:
    """A registration as the plan shows it (secrets masked) and as the rules see it."""

    resource_type: str
    name: str
    urn: str
    parent: str | None
    custom: bool
    inputs: Mapping[str, Any]
    """Masked, for display."""
    resource: Any
    """The :class:`policies.evaluate.Resource` (plain values) the rules run over."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What the program declared, and what the pack found."""

    stack: StackFile
    stack_urn: str
    resources: Sequence[Recorded]
    outputs: Mapping[str, Any]
    """Masked exports."""
    violations: Sequence[Violation]
    notes: Sequence[str] = ()
    """What the plan assumed (secrets absent from the file, planned with placeholders)."""


def ensure_event_loop() -> None:
    """Give the thread an open event loop, which Pulumi's mock runtime schedules on.

    An earlier async caller (an asyncio test, a CLI) may have closed or cleared it. Shared with
    the infra tests' recording mocks.
    """
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
        if loop.is_closed():
            raise RuntimeError("closed")
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def run_program(
    stack: StackFile, program: Path = PROGRAM
) -> tuple[str, list[Recorded], dict[str, Any], dict[str, Any]]:
    """Run a Pulumi program under the mock runtime (config must already be installed).

    Args:
        stack: The stack file (project and stack name, region for computed values).
        program: The program's entry file.

    Returns:
        The stack URN, the registrations, the exports masked and the exports plain.
    """
    import pulumi
    from google.protobuf import json_format
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime import settings as pulumi_settings

    from policies.evaluate import Resource

    region = str(stack.values.get("aws:region") or stack.values.get("gcp:region") or "us-east-1")

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
            inputs = plain(dict(args.inputs), mask=False)
            outputs = {**_computed(args.typ, args.name, inputs, region), **inputs}
            # An S3 bucket's id is its name; companion resources refer to it by either.
            resource_id = outputs["bucket"] if args.typ == "aws:s3/bucket:Bucket" else None
            return resource_id or f"{args.name}-id", outputs

        def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
            return _call(args.token, plain(dict(args.args), mask=False), region)

    recorded: list[Recorded] = []
    stack_urns: list[str] = []

    class Monitor(pulumi_mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            if request.type == "pulumi:pulumi:Stack":
                stack_urns.append(response.urn)
                return response
            wire = json_format.MessageToDict(request.object)
            state = self.resources[response.urn].state
            resource = Resource(
                resource_type=request.type,
                name=request.name,
                urn=response.urn,
                inputs=plain(wire, mask=False),
                outputs=plain(state, mask=False),
                parent=request.parent or None,
                dependencies=tuple(request.dependencies),
            )
            recorded.append(
                Recorded(
                    request.type,
                    request.name,
                    response.urn,
                    request.parent or None,
                    bool(request.custom),
                    plain(wire, mask=True),
                    resource,
                )
            )
            return response

    ensure_event_loop()
    mocks = Mocks()
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks, project=stack.project, stack=stack.stack, preview=False, monitor=Monitor(mocks)
    )
    masked: dict[str, Any] = {}
    unmasked: dict[str, Any] = {}

    @pulumi.runtime.test
    def _run() -> pulumi.Output[Any]:
        runpy.run_path(str(program), run_name="__main__")
        root = pulumi_settings.get_root_resource()
        exports = dict(getattr(root, "outputs", {}) or {})

        def keep(key: str, value: Any, secret: bool) -> None:
            unmasked[key] = plain(value, mask=False)
            masked[key] = MASK if secret else plain(value, mask=True)

        waits = []
        for key, value in exports.items():
            out = pulumi.Output.from_input(value)
            waits.append(
                pulumi.Output.all(out, pulumi.Output.from_input(out.is_secret())).apply(
                    lambda pair, key=key: keep(key, pair[0], bool(pair[1]))
                )
            )
        return pulumi.Output.all(*waits)

    _run()
    stack_urn = stack_urns[0] if stack_urns else f"urn:pulumi:{stack.stack}::{stack.project}::"
    return stack_urn, recorded, masked, unmasked


def plan(
    path: Path,
    *,
    stack: str | None = None,
    pack_config: Mapping[str, Any] | None = None,
    program: Path | None = None,
) -> Plan:
    """Validate a stack file, run the program on it under mocks and run the policy pack.

    Args:
        path: The stack file.
        stack: Stack name override (defaults from the file name).
        pack_config: Policy pack config, as ``--policy-pack-config`` takes it.
        program: The program's entry file (default: the project's ``__main__.py``).

    Returns:
        The plan.

    Raises:
        PlanError: The stack file is unreadable, its config invalid, or the program failed.
    """
    import pulumi

    from policies.evaluate import evaluate
    from stacks.config import StackConfigError, parse_stack_config

    stack_file, notes = with_required_secrets(read_stack_file(path, stack=stack))
    try:
        parse_stack_config(stack_file.raw)
    except StackConfigError as exc:
        raise PlanError(f"{path}: {exc}") from exc
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    # The rules read stack config too (``syncbot:production``), so it stays installed until
    # they have run.
    pulumi.runtime.set_all_config(dict(stack_file.values), sorted(stack_file.secret_keys))
    try:
        try:
            stack_urn, recorded, masked, unmasked = run_program(stack_file, program or PROGRAM)
        except (StackConfigError, pulumi.RunError) as exc:
            # The program reports config problems (a missing bundle, say) as a RunError.
            raise PlanError(f"{path}: {exc}") from exc
        except Exception as exc:
            raise PlanError(f"{path}: the program failed: {type(exc).__name__}: {exc}") from exc
        violations = evaluate(
            [r.resource for r in recorded],
            stack_urn=stack_urn,
            stack_outputs=unmasked,
            pack_config=pack_config,
        )
    finally:
        pulumi.runtime.set_all_config({}, [])
    return Plan(stack_file, stack_urn, recorded, masked, violations, notes)


def to_json(result: Plan) -> dict[str, Any]:
    """The ``--json`` document: resources, outputs and violations, secrets masked."""
    names = {r.urn: r.name for r in result.resources}
    return {
        "resources": [
            {
                "type": r.resource_type,
                "name": r.name,
                "parent": names.get(r.parent or ""),
                "inputs": r.inputs,
            }
            for r in result.resources
        ],
        "outputs": dict(result.outputs),
        "violations": [
            {
                "policy": v.policy,
                "enforcement": v.enforcement,
                "resource": v.resource,
                "message": v.message,
            }
            for v in result.violations
        ],
    }


def render_text(result: Plan) -> str:
    """The human view: the resource tree, the exports, then the policy findings."""
    children: dict[str | None, list[Recorded]] = {}
    known = {r.urn for r in result.resources}
    for r in result.resources:
        children.setdefault(r.parent if r.parent in known else None, []).append(r)
    lines = [f"Stack {result.stack.project}/{result.stack.stack} ({result.stack.path})"]
    lines += [f"note: {note}" for note in result.notes]

    def walk(parent: str | None, prefix: str) -> None:
        entries = children.get(parent, [])
        for index, r in enumerate(entries):
            last = index == len(entries) - 1
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{r.resource_type}  {r.name}")
            walk(r.urn, prefix + ("   " if last else "│  "))

    walk(None, "")
    lines.append(f"{len(result.resources)} resources")
    lines.append("Outputs:")
    lines += [f"  {k}: {json.dumps(v)}" for k, v in sorted(result.outputs.items())] or ["  (none)"]
    names = {r.urn: r.name for r in result.resources}
    mandatory = sum(1 for v in result.violations if v.mandatory)
    lines.append(f"Policies: {mandatory} mandatory, {len(result.violations) - mandatory} advisory")
    for v in result.violations:
        where = names.get(v.resource or "", "stack")
        lines.append(f"  [{v.enforcement}] {v.policy} ({where}): {v.message}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m stacks.plan",
        description="Plan a stack offline (mock runtime) and run the policy pack over it.",
    )
    parser.add_argument("config_file", type=Path, help="stack file, e.g. Pulumi.dev.yaml")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    parser.add_argument("--stack", help="stack name (default: from the file name)")
    parser.add_argument(
        "--policy-config", type=Path, help="policy pack config JSON (as --policy-pack-config)"
    )
    args = parser.parse_args(argv)
    try:
        pack_config = json.loads(args.policy_config.read_text()) if args.policy_config else None
        result = plan(args.config_file, stack=args.stack, pack_config=pack_config)
    except (PlanError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        print(json.dumps(to_json(result), indent=2, sort_keys=False))
    else:
        print(render_text(result))
    return EXIT_VIOLATION if any(v.mandatory for v in result.violations) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
