"""The one mock cloud: Pulumi's mock runtime answering the way AWS and GCP answer.

The offline plan (:mod:`stacks.plan`) and the infrastructure tests (``tests/infra``) both run
programs here, so what the tests prove is what the plan shows. Provider-computed outputs have
the shape the providers document, never a value the program itself predicted: a Cloud Run v2
service's ``uri`` is the hash-style ``https://<name>-<hash>-<region code>.a.run.app``
(https://cloud.google.com/run/docs/triggering/https-request: the deterministic
``<name>-<project number>.<region>.run.app`` URL is listed in ``urls``, not in ``uri``), an
auto-named resource gets Pulumi's random suffix (``<logical name>-<7 hex>``), an S3 bucket's id
is its name, an RDS master secret has the ``rds!`` ARN RDS gives it.

``preview=True`` runs the program as ``pulumi preview`` does for a stack that does not exist
yet: provider-computed outputs are unknown (only inputs echo), so ``apply`` callbacks on them
do not run and the inputs built from them reach the policy rules as unknowns. Invokes
(``getCallerIdentity``, ``getProject``) still answer, as they do in a real preview.

Mocks are process-global in Pulumi: run one program at a time through :func:`run`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings

ACCOUNT_ID = "123456789012"
PROJECT_NUMBER = "123456789012"
DEFAULT_AWS_REGION = "eu-west-1"
DEFAULT_GCP_PROJECT = "syncbot-test"
DEFAULT_GCP_REGION = "europe-west1"
MASK = "[secret]"

# Signatures the engine uses inside property structs (pulumi/sdk/go/common/resource/sig).
SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
# What an unknown value looks like on the wire during a preview.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

# Stands in for the CA certificate Cloud SQL issues (programs copy it into a secret).
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBmock\n-----END CERTIFICATE-----\n"
ACCESS_TOKEN = "ya29.mock-access-token"

# Cloud Run's region codes in ``*.a.run.app`` hostnames (a few; others get a stand-in code).
_RUN_REGION_CODES: Mapping[str, str] = {
    "europe-west1": "ew",
    "europe-west2": "nw",
    "europe-west3": "ey",
    "europe-west4": "ez",
    "europe-north1": "lz",
    "us-central1": "uc",
    "us-east1": "ue",
    "us-east4": "uk",
    "us-west1": "uw",
    "asia-northeast1": "an",
    "australia-southeast1": "ts",
}
# pulumi-aws/pulumi-gcp resources that Pulumi auto-names from the logical name when the
# program gives none, keyed by the input that carries the name.
_AUTONAMED: Mapping[str, str] = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:iam/role:Role": "name",
    "aws:lambda/function:Function": "name",
    "aws:sqs/queue:Queue": "name",
    "aws:sns/topic:Topic": "name",
    "aws:secretsmanager/secret:Secret": "name",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "name",
    "aws:rds/subnetGroup:SubnetGroup": "name",
    "aws:rds/parameterGroup:ParameterGroup": "name",
    "aws:ec2/securityGroup:SecurityGroup": "name",
    "aws:apigatewayv2/api:Api": "name",
    "aws:scheduler/schedule:Schedule": "name",
    "aws:iam/rolePolicy:RolePolicy": "name",
    "gcp:sql/databaseInstance:DatabaseInstance": "name",
}

OutputsFn = Callable[[pulumi.runtime.MockResourceArgs], Mapping[str, Any]]
CallFn = Callable[[pulumi.runtime.MockCallArgs], Mapping[str, Any]]


def _digest(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def run_app_uri(name: str, region: str) -> str:
    """The hash-style URL Cloud Run reports as a service's ``uri``."""
    code = _RUN_REGION_CODES.get(region, "zz")
    # The hash is Cloud Run's: it depends on the project, never on anything the program knows.
    return f"https://{name}-{_digest('run', name, region)[:10]}-{code}.a.run.app"


def unwrap(value: Any) -> Any:
    """Replace secret markers by their values, recursively."""
    if isinstance(value, Mapping):
        if value.get(SIG) == SECRET_SIG:
            return unwrap(value.get("value"))
        return {str(k): unwrap(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unwrap(v) for v in value]
    return value


def contains_secret(value: Any) -> bool:
    """Whether a wire value is, or holds, a secret."""
    if isinstance(value, Mapping):
        if value.get(SIG) == SECRET_SIG:
            return True
        if value.get(SIG) == OUTPUT_SIG and value.get("secret"):
            return True
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_secret(v) for v in value)
    return False


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
        sig = value.get(SIG)
        if sig == SECRET_SIG:
            return MASK if mask else plain(value.get("value"), mask=mask)
        if sig == ASSET_SIG or sig == ARCHIVE_SIG:
            kind = "asset" if sig == ASSET_SIG else "archive"
            where = value.get("path") or value.get("uri") or ("<text>" if "text" in value else "")
            return f"{kind}({where or '<assets>'})"
        if sig == RESOURCE_SIG:
            return value.get("urn")
        if sig == OUTPUT_SIG:
            if value.get("secret") and mask:
                return MASK
            return plain(value.get("value", UNKNOWN), mask=mask)
        return {str(k): plain(v, mask=mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, mask=mask) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # assets and archives as SDK objects


def drop_nulls(value: Any) -> Any:
    """Leave out null properties, as the SDK does before a provider sees them."""
    if isinstance(value, Mapping):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def computed_outputs(
    typ: str, name: str, inputs: Mapping[str, Any], *, aws_region: str
) -> dict[str, Any]:
    """What the provider computes for a created resource, merged under the echoed inputs.

    Args:
        typ: The resource type token.
        name: The logical name.
        inputs: The plain inputs.
        aws_region: The region of the resource's AWS provider.

    Returns:
        Computed outputs (identifiers override echoed inputs, see :data:`_IDENTIFIERS`).
    """
    digest = _digest(typ, name)
    out: dict[str, Any] = {}
    name_key = _AUTONAMED.get(typ)
    if name_key is not None and not inputs.get(name_key):
        # Pulumi's auto-naming: the logical name plus a random suffix.
        out[name_key] = f"{name}-{digest[:7]}"
    given = inputs.get("name") or out.get("name") or name
    here = f"{aws_region}:{ACCOUNT_ID}"
    project = str(inputs.get("project") or DEFAULT_GCP_PROJECT)
    location = str(inputs.get("location") or inputs.get("region") or DEFAULT_GCP_REGION)
    if typ.startswith("aws:"):
        service = typ.split(":")[1].split("/")[0]
        out["arn"] = f"arn:aws:{service}:{here}:{given}"
        out["tagsAll"] = dict(inputs.get("tags") or {})
    match typ:
        case "aws:lambda/function:Function":
            arn = f"arn:aws:lambda:{here}:function:{given}"
            out |= {
                "arn": arn,
                "invokeArn": f"arn:aws:apigateway:{aws_region}:lambda:path/2015-03-31/functions/"
                f"{arn}/invocations",
                "qualifiedArn": f"{arn}:$LATEST",
                "version": "$LATEST",
            }
            if inputs.get("publish"):
                out["version"] = "1"
                out["qualifiedArn"] = f"{arn}:1"
                out["qualifiedInvokeArn"] = (
                    f"arn:aws:apigateway:{aws_region}:lambda:path/2015-03-31/functions/"
                    f"{arn}:1/invocations"
                )
        case "aws:lambda/alias:Alias":
            function = str(inputs.get("functionName", ""))
            base = (
                function
                if function.startswith("arn:")
                else f"arn:aws:lambda:{here}:function:{function}"
            )
            arn = f"{base}:{inputs.get('name')}"
            out |= {
                "arn": arn,
                "invokeArn": f"arn:aws:apigateway:{aws_region}:lambda:path/2015-03-31/functions/"
                f"{arn}/invocations",
            }
        case "aws:lambda/functionUrl:FunctionUrl":
            out["functionUrl"] = f"https://{digest[:26]}.lambda-url.{aws_region}.on.aws/"
        case "aws:apigatewayv2/api:Api":
            out["apiEndpoint"] = f"https://{digest[:10]}.execute-api.{aws_region}.amazonaws.com"
            out["executionArn"] = f"arn:aws:execute-api:{here}:{digest[:10]}"
            out["arn"] = f"arn:aws:apigateway:{aws_region}::/apis/{digest[:10]}"
        case "aws:rds/instance:Instance":
            engine = str(inputs.get("engine", ""))
            identifier = inputs.get("identifier") or f"{name}-{digest[:7]}"
            out |= {
                "identifier": identifier,
                "address": f"{identifier}.{digest[:12]}.{aws_region}.rds.amazonaws.com",
                "port": inputs.get("port") or (5432 if engine.startswith("postgres") else 3306),
                "arn": f"arn:aws:rds:{here}:db:{identifier}",
                "caCertIdentifier": inputs.get("caCertIdentifier") or "rds-ca-rsa2048-g1",
                "masterUserSecrets": [
                    {
                        "secretArn": f"arn:aws:secretsmanager:{here}:secret:rds!db-"
                        f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-"
                        f"{digest[20:32]}-{digest[32:38]}",
                        "secretStatus": "active",
                    }
                ],
            }
        case "aws:iam/role:Role":
            out["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{inputs.get('name') or out['name']}"
        case "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = str(inputs.get("url", "")).removeprefix("https://")
            out["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{host}"
        case "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or out["bucket"]
            out |= {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
        case "aws:s3/bucketObjectv2:BucketObjectv2":
            out["versionId"] = digest[:32]
            out["etag"] = digest[:32]
        case "aws:secretsmanager/secret:Secret":
            secret = inputs.get("name") or out["name"]
            out["arn"] = f"arn:aws:secretsmanager:{here}:secret:{secret}-{digest[:6]}"
        case "aws:cloudwatch/logGroup:LogGroup":
            group = inputs.get("name") or out["name"]
            out["arn"] = f"arn:aws:logs:{here}:log-group:{group}"
        case "aws:cloudwatch/metricAlarm:MetricAlarm":
            out["arn"] = f"arn:aws:cloudwatch:{here}:alarm:{inputs.get('name') or out['name']}"
        case "aws:sns/topic:Topic":
            out["arn"] = f"arn:aws:sns:{here}:{inputs.get('name') or out['name']}"
        case "aws:sqs/queue:Queue":
            queue = inputs.get("name") or out["name"]
            out |= {
                "arn": f"arn:aws:sqs:{here}:{queue}",
                "url": f"https://sqs.{aws_region}.amazonaws.com/{ACCOUNT_ID}/{queue}",
            }
        case "aws:scheduler/schedule:Schedule":
            schedule = inputs.get("name") or out["name"]
            out["arn"] = f"arn:aws:scheduler:{here}:schedule/default/{schedule}"
        case "aws:lambda/eventSourceMapping:EventSourceMapping":
            out["uuid"] = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}"
        case "aws:lambda/invocation:Invocation":
            out["result"] = json.dumps({"ok": True})
        case "gcp:serviceaccount/account:Account":
            email = f"{inputs.get('accountId', name)}@{project}.iam.gserviceaccount.com"
            out |= {
                "email": email,
                "member": f"serviceAccount:{email}",
                "name": f"projects/{project}/serviceAccounts/{email}",
                "uniqueId": str(int(digest[:15], 16)),
            }
        case "gcp:cloudrunv2/service:Service":
            service = str(inputs.get("name") or name)
            deterministic = f"https://{service}-{PROJECT_NUMBER}.{location}.run.app"
            uri = run_app_uri(service, location)
            out |= {"name": service, "uri": uri, "urls": [deterministic, uri]}
        case "gcp:cloudrunv2/job:Job":
            out["name"] = inputs.get("name") or name
        case "gcp:secretmanager/secret:Secret":
            out["name"] = f"projects/{PROJECT_NUMBER}/secrets/{inputs.get('secretId')}"
        case "gcp:secretmanager/secretVersion:SecretVersion":
            out |= {"version": "1", "name": f"{inputs.get('secret')}/versions/1"}
        case "gcp:sql/databaseInstance:DatabaseInstance":
            instance = inputs.get("name") or out["name"]
            out |= {
                "name": instance,
                "connectionName": f"{project}:{location}:{instance}",
                "privateIpAddress": "10.20.0.3",
                "serverCaCerts": [{"cert": CA_PEM, "commonName": "mock-ca"}],
            }
        case "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
            pool = inputs.get("workloadIdentityPoolId", name)
            out["name"] = (
                f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{pool}"
            )
        case "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider":
            out["name"] = (
                f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/"
                f"{inputs.get('workloadIdentityPoolId')}/providers/"
                f"{inputs.get('workloadIdentityPoolProviderId')}"
            )
        case "gcp:projects/iAMCustomRole:IAMCustomRole":
            out["name"] = f"projects/{project}/roles/{inputs.get('roleId')}"
        case "gcp:artifactregistry/repository:Repository":
            out |= {"name": inputs.get("repositoryId", name), "project": project}
        case "gcp:storage/bucket:Bucket":
            bucket = inputs.get("name") or f"{name}-{digest[:7]}"
            out |= {"name": bucket, "url": f"gs://{bucket}"}
        case "gcp:monitoring/notificationChannel:NotificationChannel":
            out["name"] = f"projects/{project}/notificationChannels/{int(digest[:12], 16)}"
        case "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig":
            out["uptimeCheckId"] = f"{name}-{digest[:8]}"
            out["name"] = f"projects/{project}/uptimeCheckConfigs/{out['uptimeCheckId']}"
        case "gcp:monitoring/alertPolicy:AlertPolicy":
            out["name"] = f"projects/{project}/alertPolicies/{int(digest[:12], 16)}"
        case "docker-build:index:Image":
            image_digest = f"sha256:{_digest('image', name)}"
            tags = inputs.get("tags") or [f"{name}:latest"]
            out |= {"digest": image_digest, "ref": f"{tags[0]}@{image_digest}"}
        case "pulumi:pulumi:StackReference":
            # A bootstrap stack's exports, named the way the bootstrap names things.
            stack = str(inputs.get("name", name)).rsplit("/", 1)[-1]
            out["outputs"] = {
                "artifact_bucket": f"{stack}-artifacts-{ACCOUNT_ID}-{aws_region}",
                "image_repository": (
                    f"{DEFAULT_GCP_REGION}-docker.pkg.dev/{DEFAULT_GCP_PROJECT}/{stack}"
                ),
                "region": aws_region,
                "deploy_role": f"arn:aws:iam::{ACCOUNT_ID}:role/{stack}-deploy-role",
            }
            out["secretOutputNames"] = []
        case "random:index/randomPassword:RandomPassword":
            length = int(inputs.get("length", 32))
            out["result"] = (_digest("password", name) * 4)[:length]
        case "random:index/randomId:RandomId":
            out["hex"] = _digest("id", name)[: 2 * int(inputs.get("byteLength", 8))]
    return out


# Identifiers the provider assigns: they win over an echoed input of the same name.
_IDENTIFIERS = frozenset(
    {"arn", "invokeArn", "executionArn", "uri", "urls", "email", "qualifiedArn", "version"}
)


def call(token: str, args: Mapping[str, Any], *, aws_region: str) -> dict[str, Any]:
    """Answers to the provider functions the programs invoke.

    Raises:
        LookupError: On a function this mock does not know (add it here, faithfully).
    """
    match token:
        case "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/mock",
                "userId": "AIDAMOCK",
                "id": ACCOUNT_ID,
            }
        case "aws:index/getRegion:getRegion":
            return {"region": aws_region, "name": aws_region, "id": aws_region}
        case "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        case "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {
                "names": [f"{aws_region}{zone}" for zone in "abc"],
                "zoneIds": [f"az{i}" for i in (1, 2, 3)],
            }
        case "gcp:organizations/getProject:getProject":
            return {
                "number": PROJECT_NUMBER,
                "projectId": args.get("projectId") or DEFAULT_GCP_PROJECT,
            }
        case "gcp:organizations/getClientConfig:getClientConfig":
            return {
                "accessToken": ACCESS_TOKEN,
                "project": DEFAULT_GCP_PROJECT,
                "region": DEFAULT_GCP_REGION,
            }
        case "pulumi:pulumi:getResource":
            return {}
    raise LookupError(f"the mock cloud does not answer {token}")


@dataclass(frozen=True)
class Registration:
    """One registered resource, as the engine saw it."""

    typ: str
    name: str
    urn: str
    parent: str | None
    custom: bool
    inputs: dict[str, Any]
    """Plain inputs (secrets unwrapped; unknowns in a preview as :data:`UNKNOWN`)."""
    masked_inputs: dict[str, Any]
    """The inputs with secret values shown as ``[secret]``, for display."""
    secret_inputs: frozenset[str]
    """Top-level input names whose value was (or contained) a Pulumi secret."""
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    """What the mock provider answered: the echoed inputs plus computed outputs."""
    dependencies: tuple[str, ...] = ()
    protect: bool = False
    retain_on_delete: bool = False
    aliases: tuple[str, ...] = ()
    """Alias names or URNs the resource was registered with."""

    @property
    def parent_name(self) -> str | None:
        """The logical name of the parent (``None`` for the stack's direct children)."""
        if self.parent is None or self.parent.split("::")[2] == "pulumi:pulumi:Stack":
            return None
        return self.parent.rsplit("::", 1)[-1]


@dataclass
class Run:
    """What a program did under the mock cloud."""

    resources: list[Registration]
    outputs: dict[str, Any]
    """Plain exports (secrets unwrapped)."""
    masked_outputs: dict[str, Any]
    secret_outputs: frozenset[str]
    stack_urn: str
    preview: bool = False
    component_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What each component passed to ``register_outputs``, by URN (kept in state)."""

    def of_type(self, typ: str) -> list[Registration]:
        """Every resource of a type token (``aws:s3/bucket:Bucket``)."""
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> Registration:
        """The only resource of a type; fails if there are none or several."""
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> Registration:
        """The resource with this logical name."""
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def children_of(self, name: str) -> list[Registration]:
        """Direct children of the resource with this logical name."""
        return [r for r in self.resources if r.parent_name == name]

    def all_inputs_text(self) -> str:
        """Every recorded input as one JSON text, for "value never appears" assertions."""
        return json.dumps([r.inputs for r in self.resources], default=str, sort_keys=True)


class MockCloud(pulumi.runtime.Mocks):
    """Echoes inputs plus what the provider computes; unknown in a preview."""

    def __init__(
        self,
        *,
        aws_region: str = DEFAULT_AWS_REGION,
        preview: bool = False,
        outputs: OutputsFn | None = None,
        call: CallFn | None = None,
    ) -> None:
        self.aws_region = aws_region
        self.preview = preview
        self._outputs = outputs
        self._call = call
        # Region of each explicit AWS provider, by provider name: regional ARNs follow it.
        self.provider_regions: dict[str, str] = {}

    def _region(self, provider: str | None) -> str:
        # A provider reference is "<provider urn>::<id>"; the urn ends with the provider name.
        parts = (provider or "").split("::")
        if len(parts) >= 2:
            return self.provider_regions.get(parts[-2], self.aws_region)
        return self.aws_region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = plain(dict(args.inputs), mask=False)
        if args.typ == "pulumi:providers:aws" and inputs.get("region"):
            self.provider_regions[args.name] = str(inputs["region"])
        if self.preview and args.typ.split(":")[0] != "pulumi":
            # A resource being created: the engine knows its inputs, nothing the cloud assigns.
            return "", dict(args.inputs)
        computed = computed_outputs(
            args.typ, args.name, inputs, aws_region=self._region(args.provider)
        )
        if self._outputs is not None:
            computed |= dict(self._outputs(args))
        identifiers = {k: v for k, v in computed.items() if k in _IDENTIFIERS}
        state = {**computed, **dict(args.inputs), **identifiers}
        if args.typ == "aws:s3/bucket:Bucket":
            return str(computed["bucket"]), state  # a bucket's id is its name
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if self._call is not None:
            answer = self._call(args)
            if answer:
                return dict(answer)
        return call(args.token, plain(dict(args.args), mask=False), aws_region=self.aws_region)


class _Monitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: MockCloud) -> None:
        super().__init__(mocks)
        self.preview = mocks.preview
        self.recorded: list[Registration] = []
        self.stack_urns: list[str] = []
        self.component_outputs: dict[str, dict[str, Any]] = {}

    def RegisterResourceOutputs(self, request: Any) -> Any:
        # What a component registers as its outputs: part of its state in the engine.
        self.component_outputs[request.urn] = plain(
            json_format.MessageToDict(request.outputs), mask=False
        )
        return super().RegisterResourceOutputs(request)

    def ReadResource(self, request: Any) -> Any:
        # Reads of existing resources (a StackReference is one) are recorded like creations.
        response = super().ReadResource(request)
        inputs = drop_nulls(plain(json_format.MessageToDict(request.properties), mask=False))
        self.recorded.append(
            Registration(
                typ=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent or None,
                custom=True,
                inputs=inputs,
                masked_inputs=inputs,
                secret_inputs=frozenset(),
                id=request.id,
                outputs=plain(dict(self.resources[response.urn].state), mask=False),
                dependencies=tuple(request.dependencies),
            )
        )
        return response

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urns.append(response.urn)
            return response
        wire = json_format.MessageToDict(request.object)
        inputs = drop_nulls(plain(wire, mask=False))
        state = plain(dict(self.resources[response.urn].state), mask=False)
        aliases = tuple(request.aliasURNs) + tuple(
            a.spec.name or a.urn for a in request.aliases if a.spec.name or a.urn
        )
        self.recorded.append(
            Registration(
                typ=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent or None,
                custom=bool(request.custom),
                inputs=inputs,
                masked_inputs=drop_nulls(plain(wire, mask=True)),
                secret_inputs=frozenset(k for k, v in wire.items() if contains_secret(v)),
                id=response.id,
                # A resource being created in a preview has its inputs as state, unknowns
                # included (the SDK drops those from what the mock provider sees).
                outputs=dict(inputs) if self.preview else state,
                dependencies=tuple(request.dependencies),
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                aliases=aliases,
            )
        )
        return response


def ensure_event_loop() -> None:
    """Give the thread an open event loop, which Pulumi's mock runtime schedules on.

    An earlier async caller (an asyncio test, a CLI) may have closed or cleared it.
    """
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
        if loop.is_closed():
            raise RuntimeError("closed")
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def run(
    program: Callable[[], Mapping[str, Any] | None],
    *,
    project: str,
    stack: str,
    config: Mapping[str, str] | None = None,
    secret_keys: frozenset[str] | set[str] = frozenset(),
    preview: bool = False,
    outputs: OutputsFn | None = None,
    call: CallFn | None = None,
) -> Run:
    """Run a program under the mock cloud.

    Args:
        program: Declares resources; may ``pulumi.export`` and/or return a mapping of outputs.
        project: The Pulumi project name.
        stack: The stack name.
        config: Full-key stack config as engine strings; ``None`` keeps what is installed.
        secret_keys: Keys of ``config`` the engine reports as secret.
        preview: Run as a first ``pulumi preview`` (provider-computed outputs unknown).
        outputs: Extra computed outputs per resource (a test's override).
        call: Answers for provider functions, tried before the built-in ones.

    Returns:
        The registrations and the resolved exports (unknown ones absent in a preview).
    """
    if config is not None:
        pulumi.runtime.set_all_config(dict(config), sorted(secret_keys))
    installed = dict(config or {})
    if config is None:
        from pulumi.runtime import config as runtime_config

        installed = dict(runtime_config.CONFIG.get())
    region = installed.get("aws:region") or DEFAULT_AWS_REGION
    ensure_event_loop()
    mocks = MockCloud(aws_region=region, preview=preview, outputs=outputs, call=call)
    monitor = _Monitor(mocks)
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
    resolved: dict[str, Any] = {}
    masked: dict[str, Any] = {}
    secret: set[str] = set()
    expected_exports: list[str] = []

    @pulumi.runtime.test
    def _run() -> pulumi.Output[Any]:
        returned = dict(program() or {})
        root = pulumi_settings.get_root_resource()
        exported = dict(getattr(root, "outputs", {}) or {})
        expected_exports.extend({**exported, **returned})

        def keep(key: str, value: Any, is_secret: bool) -> None:
            resolved[key] = plain(value, mask=False)
            masked[key] = MASK if is_secret else plain(value, mask=True)
            if is_secret:
                secret.add(key)

        waits = []
        for key, value in {**exported, **returned}.items():
            out = pulumi.Output.from_input(value)
            waits.append(
                pulumi.Output.all(out, pulumi.Output.from_input(out.is_secret())).apply(
                    lambda pair, key=key: keep(key, pair[0], bool(pair[1]))
                )
            )
        return pulumi.Output.all(*waits)

    _run()
    if preview:
        # Exports computed from provider outputs are unknown: present, value not yet known.
        for key in expected_exports:
            resolved.setdefault(key, UNKNOWN)
            masked.setdefault(key, UNKNOWN)
    stack_urn = (
        monitor.stack_urns[0]
        if monitor.stack_urns
        else f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"
    )
    return Run(
        resources=list(monitor.recorded),
        outputs=resolved,
        masked_outputs=masked,
        secret_outputs=frozenset(secret),
        stack_urn=stack_urn,
        preview=preview,
        component_outputs=dict(monitor.component_outputs),
    )


def policy_resources(run_: Run) -> list[Any]:
    """The run's resources as the policy pack's offline evaluator takes them."""
    from policies.evaluate import Resource

    return [
        Resource(
            resource_type=r.typ,
            name=r.name,
            urn=r.urn,
            inputs=r.inputs,
            outputs={**r.outputs, "id": r.id} if r.id else dict(r.outputs),
            parent=r.parent,
            dependencies=r.dependencies,
            protect=r.protect,
            retain_on_delete=r.retain_on_delete,
        )
        for r in run_.resources
    ]


@functools.cache
def rds_ca_bundle() -> bytes:
    """A stand-in for AWS's RDS CA bundle, shaped like it: a self-signed root CA of
    "Amazon Web Services, Inc." for RDS (what :func:`infra.rds_ca.check_bundle` accepts)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Amazon Web Services, Inc."),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Amazon RDS"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Amazon RDS mock-region-1 Root CA ECC384 G1"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def lambda_bundle(path: Path, *, with_rds_ca: bool = True) -> Path:
    """A tiny stand-in for the Lambda zip (programs hash and upload it, never run it)."""
    import zipfile

    from infra.rds_ca import BUNDLE_MEMBER

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app/__init__.py", "")
        if with_rds_ca:
            archive.writestr(BUNDLE_MEMBER, rds_ca_bundle())
    return path
