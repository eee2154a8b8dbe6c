"""An app stack on an existing VPC and an existing database (URL held in a secret)."""

from __future__ import annotations

import json

import pytest

from infra.contract import AWS_SECRET_ARNS_ENV, ENV_BY_NAME, Source
from tests.infra.aws.aws_stack_fixtures import fake_bundle, run_stack, stack_file_config
from tests.infra.conftest import MockRun

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DATABASE_URL = "postgresql+psycopg://syncbot:pw-9d1c@db.internal:5432/syncbot"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> MockRun:
    config = stack_file_config("Pulumi.dev.yaml")
    config |= {
        "syncbot:databaseMode": "existing",
        "syncbot:databaseUrl": {"secure": DATABASE_URL},
        "syncbot:slackSigningSecret": {"secure": "signing-secret-value"},
        "syncbot:slackClientSecret": {"secure": "client-secret-value"},
        "syncbot:tokenEncryptionKey": {"secure": "k" * 20 + "0123456789abcdefghij"},
        "syncbot:awsVpcId": "vpc-0abc123",
        "syncbot:awsPrivateSubnetIds": ["subnet-01", "subnet-02"],
    }
    return run_stack(config, bundle=fake_bundle(tmp_path_factory.mktemp("bundle")))


def test_no_vpc_or_database_is_created(run: MockRun) -> None:
    for typ in (
        "aws:ec2/vpc:Vpc",
        "aws:ec2/natGateway:NatGateway",
        "aws:rds/instance:Instance",
    ):
        assert not run.of_type(typ), typ
    # The token key is given; the only generated value is the metrics token.
    generated = run.of_type("random:index/randomPassword:RandomPassword")
    assert [r.name.rsplit("-secrets-", 1)[-1] for r in generated] == ["metrics-token"]
    fn = run.one("aws:lambda/function:Function").inputs
    assert fn["vpcConfig"]["subnetIds"] == ["subnet-01", "subnet-02"]
    sg = run.one("aws:ec2/securityGroup:SecurityGroup").inputs
    assert sg["vpcId"] == "vpc-0abc123"


def test_the_database_url_is_a_secret_read_by_arn(run: MockRun) -> None:
    env = run.one("aws:lambda/function:Function").inputs["environment"]["variables"]
    assert set(json.loads(env[AWS_SECRET_ARNS_ENV])) == {
        "DATABASE_URL",
        "SLACK_SIGNING_SECRET",
        "SLACK_CLIENT_SECRET",
        "TOKEN_ENCRYPTION_KEY",
        "SYNCBOT_METRICS_TOKEN",
    }
    assert not [n for n in env if ENV_BY_NAME.get(n) and ENV_BY_NAME[n].source is Source.DATABASE]
    holders = [r.name for r in run.resources if DATABASE_URL in json.dumps(r.inputs, default=str)]
    assert holders == [
        r.name
        for r in run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
        if r.inputs["secretString"] == DATABASE_URL and "secretString" in r.secret_inputs
    ]
    assert len(holders) == 1
