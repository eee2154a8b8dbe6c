"""Shared Pulumi mock runtime for infrastructure tests (AWS and GCP).

:class:`RecordingMocks` echoes every resource's inputs, adds plausible computed outputs (``arn``,
``id``, ``name``, ``endpoint``, ``uri``…) and records each registration with its parent and which
inputs were Pulumi secrets. :func:`run_program` runs a program or component under those mocks
and returns a :class:`MockRun` holding the recorded resources and the resolved stack outputs.

Mocks are process-global in Pulumi, so run one program per module-scoped fixture and assert on
the returned :class:`MockRun`; never install mocks at import time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings

from policies.evaluate import Resource, Violation, evaluate
from stacks.plan import ensure_event_loop

ACCOUNT_ID = "123456789012"
REGION = "eu-west-1"
PROJECT = "syncbot"
STACK = "test"
# The marker the engine wraps secret values in on the wire.
_SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")

OutputsFn = Callable[[pulumi.runtime.MockResourceArgs], Mapping[str, Any]]
CallFn = Callable[[pulumi.runtime.MockCallArgs], Mapping[str, Any]]


@dataclass(frozen=True)
class Recorded:
    """One registered resource."""

    typ: str
    name: str
    inputs: dict[str, Any]
    urn: str
    parent: str | None
    secret_inputs: frozenset[str]
    """Top-level input names whose value was (or contained) a Pulumi secret."""
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    """What the mocks answered: the echoed inputs plus computed outputs."""
    dependencies: tuple[str, ...] = ()
    """URNs this resource depends on."""

    @property
    def parent_name(self) -> str | None:
        """The logical name of the parent resource (``None`` for the stack's direct children)."""
        if self.parent is None or self.parent.split("::")[2] == "pulumi:pulumi:Stack":
            return None
        return self.parent.rsplit("::", 1)[-1]


@dataclass
class MockRun:
    """What a program did under the mocks."""

    resources: list[Recorded]
    outputs: dict[str, Any]
    secret_outputs: frozenset[str]

    def of_type(self, typ: str) -> list[Recorded]:
        """Every resource of a type token (``aws:s3/bucket:Bucket``)."""
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> Recorded:
        """The only resource of a type; fails the test if there are none or several."""
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> Recorded:
        """The resource with this logical name."""
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def children_of(self, name: str) -> list[Recorded]:
        """Direct children of the resource with this logical name."""
        return [r for r in self.resources if r.parent_name == name]

    def all_inputs_text(self) -> str:
        """Every recorded input as one JSON text, for "value never appears" assertions."""
        return json.dumps([r.inputs for r in self.resources], default=str, sort_keys=True)


STACK_URN = f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{STACK}"

Edit = Callable[[Recorded, Mapping[str, Any]], Mapping[str, Any]]
"""Changes one resource's inputs or outputs before the pack sees them (a negative control)."""


def patch_type(typ: str, **patch: Any) -> Edit:
    """An edit that sets ``patch`` on every resource of type ``typ``."""
    return lambda r, props: {**props, **patch} if r.typ == typ else props


def evaluate_run(run: MockRun, edit: Edit | None = None) -> list[Violation]:
    """The policy pack's findings on a run as the offline plan presents it (inputs to resource
    rules, outputs, parents and dependencies to stack rules), each resource edited first."""
    change = edit or (lambda r, props: props)
    resources = [
        Resource(
            r.typ,
            r.name,
            r.urn,
            change(r, r.inputs),
            {**change(r, r.outputs), "id": r.id},
            r.parent,
            r.dependencies,
        )
        for r in run.resources
    ]
    return evaluate(resources, stack_urn=STACK_URN, stack_outputs=run.outputs)


def _contains_secret(value: Any) -> bool:
    if isinstance(value, dict):
        if value.get(_SECRET_SIG[0]) == _SECRET_SIG[1]:
            return True
        return any(_contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secret(v) for v in value)
    return False


def _unwrap(value: Any) -> Any:
    """Replaces secret markers by their values (``Recorded.secret_inputs`` keeps the fact)."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG[0]) == _SECRET_SIG[1]:
            return _unwrap(value.get("value"))
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def default_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """Plausible computed outputs for any resource (provider-neutral where possible).

    Args:
        args: The mocked registration.

    Returns:
        Outputs to merge over the echoed inputs.
    """
    name = args.name
    service = args.typ.split(":")[1].split("/")[0] if ":" in args.typ else "mock"
    digest = hashlib.sha256(f"{args.typ}/{name}".encode()).hexdigest()
    outputs: dict[str, Any] = {
        "arn": f"arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{name}",
        "name": args.inputs.get("name", name),
        "endpoint": f"{name}.{digest[:10]}.{REGION}.example.internal",
        "uri": f"https://{name}-{digest[:8]}.example.test",
    }
    match args.typ:
        case "aws:lambda/function:Function":
            arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
            outputs |= {
                "arn": arn,
                "invokeArn": f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
                f"{arn}/invocations",
                "qualifiedArn": f"{arn}:1",
                "version": "1",
            }
        case "aws:apigatewayv2/api:Api":
            outputs |= {
                "apiEndpoint": f"https://{digest[:10]}.execute-api.{REGION}.amazonaws.com",
                "executionArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{digest[:10]}",
            }
        case "aws:rds/instance:Instance":
            port = args.inputs.get("port") or (
                5432 if args.inputs.get("engine") == "postgres" else 3306
            )
            outputs |= {
                "address": f"{name}.{digest[:12]}.{REGION}.rds.amazonaws.com",
                "port": port,
                "masterUserSecrets": [
                    {
                        "secretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}"
                        f":secret:rds!{name}"
                    }
                ],
            }
        case "aws:iam/role:Role":
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"
        case "aws:s3/bucket:Bucket":
            outputs |= {"bucket": args.inputs.get("bucket", f"{name}-{digest[:7]}")}
            outputs["arn"] = f"arn:aws:s3:::{outputs['bucket']}"
        case "aws:secretsmanager/secret:Secret":
            outputs["arn"] = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{name}-AbCdEf"
        case "aws:cloudwatch/logGroup:LogGroup":
            outputs["arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{outputs['name']}"
        case "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = str(args.inputs.get("url", "")).removeprefix("https://")
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{host}"
        case "aws:sqs/queue:Queue":
            outputs |= _queue_outputs(outputs["name"], REGION)
        case "aws:lambda/eventSourceMapping:EventSourceMapping":
            outputs["uuid"] = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}"
        case "random:index/randomPassword:RandomPassword":
            outputs["result"] = "r" * int(args.inputs.get("length", 32))
        case "aws:lambda/invocation:Invocation":
            outputs["result"] = json.dumps({"ok": True})
    return outputs


def _queue_outputs(queue: str, region: str) -> dict[str, str]:
    return {
        "arn": f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{queue}",
        "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{queue}",
    }


def default_call(args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
    """Answers the provider functions the programs call (caller identity, zones, partition)."""
    match args.token:
        case "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/test",
                "userId": "AIDTEST",
            }
        case "aws:index/getRegion:getRegion":
            return {"region": REGION, "name": REGION, "id": REGION}
        case "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}
        case "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{REGION}{suffix}" for suffix in "abc"]
            return {"names": names, "zoneIds": [f"euw1-az{i}" for i in (1, 2, 3)]}
        case _:
            return {}


class RecordingMocks(pulumi.runtime.Mocks):
    """Echoes inputs plus computed outputs; the monitor records registrations."""

    def __init__(self, outputs: OutputsFn | None = None, call: CallFn | None = None) -> None:
        self._outputs = outputs
        self._call = call
        # Registrations may run concurrently: key the inputs by (type, name), unique per stack.
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}
        # Region of each explicit AWS provider, by provider name: regional ARNs follow it.
        self.provider_regions: dict[str, str] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.inputs[(args.typ, args.name)] = _unwrap(dict(args.inputs))
        if args.typ == "pulumi:providers:aws" and args.inputs.get("region"):
            self.provider_regions[args.name] = str(args.inputs["region"])
        computed = dict(default_outputs(args))
        if args.typ == "aws:sqs/queue:Queue":
            computed |= _queue_outputs(computed["name"], self._region(args.provider))
        if self._outputs is not None:
            computed |= self._outputs(args)
        return f"{args.name}-id", {**computed, **args.inputs, **_overrides(computed)}

    def _region(self, provider: str | None) -> str:
        # A provider reference is "<provider urn>::<id>"; the urn ends with the provider name.
        parts = (provider or "").split("::")
        return self.provider_regions.get(parts[-2], REGION) if len(parts) >= 2 else REGION

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if self._call is not None:
            answer = self._call(args)
            if answer:
                return dict(answer)
        return default_call(args)


def _overrides(computed: Mapping[str, Any]) -> dict[str, Any]:
    # Computed identifiers win over echoed inputs; everything else echoes what was asked for.
    return {k: v for k, v in computed.items() if k in {"arn", "invokeArn", "executionArn"}}


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording_mocks = mocks
        self.recorded: list[Recorded] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = json_format.MessageToDict(request.object)
            self.recorded.append(
                Recorded(
                    typ=request.type,
                    name=request.name,
                    # The inputs exactly as the mocks saw them (secrets unwrapped, typed).
                    inputs=self.recording_mocks.inputs.get((request.type, request.name), {}),
                    urn=response.urn,
                    parent=request.parent or None,
                    secret_inputs=frozenset(k for k, v in raw.items() if _contains_secret(v)),
                    id=response.id,
                    outputs=_unwrap(dict(self.resources[response.urn].state)),
                    dependencies=tuple(request.dependencies),
                )
            )
        return response


def run_program(
    program: Callable[[], Mapping[str, Any] | None],
    *,
    config: Mapping[str, Any] | None = None,
    secret_keys: frozenset[str] | set[str] = frozenset(),
    outputs: OutputsFn | None = None,
    call: CallFn | None = None,
    project: str = PROJECT,
    stack: str = STACK,
) -> MockRun:
    """Runs a program under the recording mocks.

    Args:
        program: Declares resources; may ``pulumi.export`` and/or return a mapping of outputs.
        config: Full-key stack config (``"syncbot:provider": "aws"``); non-strings become JSON,
            as the engine delivers structured config.
        secret_keys: Keys of ``config`` the engine would report as secret.
        outputs: Extra computed outputs per resource, merged over :func:`default_outputs`.
        call: Answers for provider functions, tried before :func:`default_call`.
        project: The Pulumi project name.
        stack: The stack name.

    Returns:
        The recorded resources and the resolved stack outputs (exports plus returned mapping).
    """
    ensure_event_loop()
    mocks = RecordingMocks(outputs, call)
    monitor = _RecordingMonitor(mocks)
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()},
        list(secret_keys),
    )
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    resolved: dict[str, Any] = {}
    secret: set[str] = set()

    @pulumi.runtime.test
    def _run() -> pulumi.Output[Any]:
        returned = dict(program() or {})
        root = pulumi_settings.get_root_resource()
        exported = dict(getattr(root, "outputs", {}) or {})
        everything = {**exported, **returned}

        def record(name: str, value: Any, is_secret: bool) -> None:
            resolved[name] = value
            if is_secret:
                secret.add(name)

        waits = []
        for key, value in everything.items():
            out = pulumi.Output.from_input(value)
            flag = pulumi.Output.from_input(out.is_secret())
            waits.append(
                pulumi.Output.all(out, flag).apply(
                    lambda pair, key=key: record(key, pair[0], bool(pair[1]))
                )
            )
        return pulumi.Output.all(*waits)

    _run()
    return MockRun(
        resources=list(monitor.recorded), outputs=resolved, secret_outputs=frozenset(secret)
    )


@pytest.fixture
def mock_runner() -> Iterator[Callable[..., MockRun]]:
    """:func:`run_program`, with the global config cleared afterwards."""
    yield run_program
    pulumi.runtime.set_all_config({}, [])


def engine_config(stack_config: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Turns a stack file's ``config:`` block into what the engine hands a program.

    ``{"secure": ciphertext}`` values become plain strings flagged secret (the engine would
    decrypt them; the ciphertext stands in for the value).

    Args:
        stack_config: The ``config:`` mapping of a ``Pulumi.<stack>.yaml``.

    Returns:
        The config for :func:`run_program` and its secret keys.
    """
    config: dict[str, Any] = {}
    secret_keys: set[str] = set()
    for key, value in stack_config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[key] = value["secure"]
            secret_keys.add(key)
        else:
            config[key] = value
    return config, secret_keys
