"""GCP flavour of the shared mock runtime (``tests/infra/conftest.py``): computed GCP outputs.

The shared runner records every registration (inputs, parent, secret inputs) and the resolved
outputs; this module adds what GCP computes (service account emails, ``run.app`` URLs, the
private IP and server CA of Cloud SQL, image digests, WIF resource names) and answers the
provider functions the GCP program calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import pulumi

from tests.infra.conftest import MockRun, Recorded, run_program

Run = MockRun
Resource = Recorded

PROJECT = "syncbot-test"
PROJECT_NUMBER = "123456789012"
REGION = "europe-west1"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBmock\n-----END CERTIFICATE-----\n"
ACCESS_TOKEN = "ya29.mock-access-token"


def gcp_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """Outputs GCP computes for the resource types the components create."""
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
            length = int(inputs["length"])
            return {"result": (hashlib.sha256(args.name.encode()).hexdigest() * 4)[:length]}
        case "gcp:cloudrunv2/job:Job":
            return {"name": inputs["name"]}
        case _:
            return {}


def gcp_call(args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
    """Answers the provider functions the GCP components invoke."""
    match args.token:
        case "gcp:organizations/getProject:getProject":
            return {"number": PROJECT_NUMBER, "projectId": PROJECT}
        case "gcp:organizations/getClientConfig:getClientConfig":
            return {"accessToken": ACCESS_TOKEN, "project": PROJECT, "region": REGION}
    raise AssertionError(f"unexpected invoke {args.token}")


def run_gcp(program: Callable[[], Mapping[str, pulumi.Input[Any]]]) -> MockRun:
    """Run ``program`` under the shared recording mocks with GCP's computed outputs."""
    try:
        return run_program(program, outputs=gcp_outputs, call=gcp_call)
    finally:
        pulumi.runtime.set_all_config({}, [])
