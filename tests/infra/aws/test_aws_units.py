"""Pure helpers of the AWS components, without the Pulumi runtime."""

from __future__ import annotations

import ipaddress

import pytest

from infra.aws.database import parameter_family
from infra.aws.env import lambda_env
from infra.aws.iam import service_trust_policy
from infra.aws.network import subnet_cidrs


@pytest.mark.parametrize("zones", [2, 3])
def test_subnets_fit_the_vpc_and_never_overlap(zones: int) -> None:
    public, private = subnet_cidrs("10.40.0.0/16", zones)
    assert (len(public), len(private)) == (zones, zones)
    blocks = [ipaddress.ip_network(c) for c in public + private]
    vpc = ipaddress.ip_network("10.40.0.0/16")
    assert all(block.subnet_of(vpc) for block in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])
    # Lambda takes an ENI per concurrent subnet/SG pair: private subnets get the room.
    assert all(ipaddress.ip_network(c).prefixlen == 20 for c in private)


def test_parameter_families() -> None:
    assert parameter_family("postgres", "16") == "postgres16"
    assert parameter_family("postgres", "16.4") == "postgres16"
    assert parameter_family("mysql", "8.0") == "mysql8.0"
    assert parameter_family("mysql", "8.0.39") == "mysql8.0"


def test_service_trust_can_pin_the_source_account() -> None:
    (statement,) = service_trust_policy("scheduler.amazonaws.com", source_account="1")["Statement"]
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "1"}}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"config": {"SLACK_CLIENT_SECRET": "x"}}, "not a plain contract setting"),
        ({"config": {"NOT_IN_CONTRACT": "x"}}, "not a plain contract setting"),
        ({"secret_arns": {"LOG_LEVEL": "arn"}}, "not a secret contract variable"),
        ({"secret_arns": {}, "database": None}, "needs DATABASE_URL"),
    ],
)
def test_lambda_env_refuses_miswiring(kwargs: dict, message: str) -> None:
    arguments = {
        "backend": "mysql",
        "config": {},
        "secret_arns": {},
        "database": None,
        "public_url": "https://x",
    } | kwargs
    with pytest.raises(ValueError, match=message):
        lambda_env(**arguments)


def test_lambda_env_dispatches_through_sqs_only_with_a_queue() -> None:
    arguments = {
        "backend": "mysql",
        "config": {},
        "secret_arns": {"DATABASE_URL": "arn:aws:secretsmanager:eu-west-1:1:secret:url"},
        "database": None,
        "public_url": "https://x",
    }
    without = lambda_env(**arguments)  # type: ignore[arg-type]
    assert not {k for k in without if k.startswith(("SYNCBOT_DISPATCH", "SYNCBOT_DELIVERY"))}
    url = "https://sqs.eu-west-1.amazonaws.com/1/app-deliveries.fifo"
    env = lambda_env(**arguments, delivery_queue_url=url)  # type: ignore[arg-type]
    assert (env["SYNCBOT_DISPATCH"], env["SYNCBOT_DELIVERY_QUEUE"]) == ("sqs", url)
    assert "SYNCBOT_DELIVERY_INVOKER" not in env  # Cloud Tasks' identity; SQS needs none
