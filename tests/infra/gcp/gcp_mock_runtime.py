"""Pulumi mock runtime for the GCP tests: record every resource, compute GCP outputs.

A plain module (not a conftest) so it cannot clash with the shared ``tests/infra/conftest.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

PROJECT = "syncbot-test"
PROJECT_NUMBER = "123456789012"
REGION = "europe-west1"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBmock\n-----END CERTIFICATE-----\n"
ACCESS_TOKEN = "ya29.mock-access-token"


@dataclass(frozen=True)
class Resource:
    """One registered resource: type token, name and its (camelCase) inputs."""

    typ: str
    name: str
    inputs: dict[str, Any]


def _computed(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    inputs = args.inputs
    match args.typ:
        case "gcp:serviceaccount/account:Account":
            project = inputs.get("project", PROJECT)
            email = f"{inputs['accountId']}@{project}.iam.gserviceaccount.com"
            return {"email": email, "name": f"projects/{PROJECT}/serviceAccounts/{email}"}
        case "gcp:cloudrunv2/service:Service":
            return {"uri": f"https://{inputs['name']}-{PROJECT_NUMBER}.{REGION}.run.app"}
        case "gcp:secretmanager/secretVersion:SecretVersion":
            return {"version": "1", "name": f"{inputs['secret']}/versions/1"}
        case "gcp:sql/databaseInstance:DatabaseInstance":
            return {
                "name": args.name,
                "privateIpAddress": "10.20.0.3",
                "serverCaCerts": [{"cert": CA_PEM, "commonName": "mock-ca"}],
            }
        case "docker-build:index:Image":
            digest = "sha256:" + hashlib.sha256(args.name.encode()).hexdigest()
            return {"digest": digest, "ref": f"{inputs['tags'][0]}@{digest}"}
        case "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
            pool = inputs["workloadIdentityPoolId"]
            pools = f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools"
            return {"name": f"{pools}/{pool}"}
        case "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider":
            return {
                "name": (
                    f"projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/"
                    f"{inputs['workloadIdentityPoolId']}/providers/"
                    f"{inputs['workloadIdentityPoolProviderId']}"
                )
            }
        case "gcp:artifactregistry/repository:Repository":
            return {"name": inputs["repositoryId"], "project": inputs.get("project", PROJECT)}
        case "gcp:storage/bucket:Bucket":
            return {"name": inputs.get("name") or f"{args.name}-bucket"}
        case "random:index/randomPassword:RandomPassword":
            return {"result": "r" * int(inputs["length"])}
        case "gcp:cloudrunv2/job:Job":
            return {"name": inputs["name"]}
        case _:
            return {}


class RecordingMocks(pulumi.runtime.Mocks):
    """Echoes inputs, adds the outputs GCP computes, and records every registration."""

    def __init__(self) -> None:
        self.resources: list[Resource] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(Resource(args.typ, args.name, dict(args.inputs)))
        return f"{args.name}-id", {**args.inputs, **_computed(args)}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        match args.token:
            case "gcp:organizations/getProject:getProject":
                return {"number": PROJECT_NUMBER, "projectId": PROJECT}
            case "gcp:organizations/getClientConfig:getClientConfig":
                return {"accessToken": ACCESS_TOKEN, "project": PROJECT, "region": REGION}
        raise AssertionError(f"unexpected invoke {args.token}")


@dataclass
class Run:
    """The resources and resolved outputs of one program run under mocks."""

    resources: list[Resource]
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> Resource:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, got {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> Resource:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}"
        return found[0]


def run_program(
    program: Callable[[], Mapping[str, pulumi.Input[Any]]],
    *,
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
    stack: str = "test",
) -> Run:
    """Run ``program`` under fresh mocks and wait for every registration and output."""
    mocks = RecordingMocks()
    pulumi.runtime.set_all_config(dict(config or {}), secret_keys or [])
    pulumi.runtime.set_mocks(mocks, project="syncbot", stack=stack, preview=False)
    run = Run(resources=mocks.resources)

    @pulumi.runtime.test
    def _collect() -> pulumi.Output[Any]:
        outputs = program()
        pending = []
        for key, value in outputs.items():
            output = pulumi.Output.from_input(value)
            secret = pulumi.Output.from_input(output.is_secret())
            pending.append(
                pulumi.Output.all(pulumi.Output.unsecret(output), secret).apply(
                    lambda pair, key=key: _store(run, key, pair[0], pair[1])
                )
            )
        return pulumi.Output.all(*pending)

    _collect()
    return run


def _store(run: Run, key: str, value: Any, secret: bool) -> None:
    run.outputs[key] = value
    if secret:
        run.secret_outputs.add(key)
