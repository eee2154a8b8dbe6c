"""``Network``: private subnets with egress for the function and the database."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


@dataclass
class NetworkArgs:
    """Inputs of :class:`Network`. Set both ``vpc_id`` and ``subnet_ids`` to reuse a VPC."""

    region: str
    cidr: str = "10.40.0.0/16"
    zones: int = 2
    nat_per_zone: bool = False
    """One NAT gateway per zone survives a zone outage; one shared gateway costs less."""
    vpc_id: str | None = None
    subnet_ids: Sequence[str] = field(default_factory=tuple)


def subnet_cidrs(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Splits a /16 into per-zone public /24s and private /20s (room for Lambda ENIs).

    Args:
        cidr: The VPC block.
        zones: How many availability zones.

    Returns:
        Public and private subnet blocks, one of each per zone.
    """
    network = ipaddress.ip_network(cidr)
    private = list(network.subnets(new_prefix=20))[:zones]
    # Public subnets only hold NAT gateways; take /24s from the top of the block.
    public = list(network.subnets(new_prefix=24))[-zones:]
    return [str(n) for n in public], [str(n) for n in private]


class Network(pulumi.ComponentResource):
    """A VPC (or an existing one) and the function's security group."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    function_security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:aws:Network", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        if args.vpc_id is not None:
            # An existing VPC is expected to route its private subnets to a NAT already.
            self.vpc_id = pulumi.Output.from_input(args.vpc_id)
            self.private_subnet_ids = pulumi.Output.from_input(list(args.subnet_ids))
            self.function_sg = self._function_security_group(self.vpc_id)
        else:
            self._create(args)
        self.function_security_group_id = self.function_sg.id
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "function_security_group_id": self.function_security_group_id,
            }
        )

    def _function_security_group(self, vpc_id: pulumi.Input[str]) -> aws.ec2.SecurityGroup:
        return aws.ec2.SecurityGroup(
            f"{self._name}-function-sg",
            description="syncbot function: no inbound, outbound to database, AWS and chat APIs",
            vpc_id=vpc_id,
            egress=[
                {
                    "protocol": "-1",
                    "from_port": 0,
                    "to_port": 0,
                    "cidr_blocks": ["0.0.0.0/0"],
                    "description": "Slack, Matrix, peers and AWS APIs",
                }
            ],
            opts=self._child,
        )

    def _create(self, args: NetworkArgs) -> None:
        name, child = self._name, self._child
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        ).names
        public_cidrs, private_cidrs = subnet_cidrs(args.cidr, args.zones)
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        self.vpc_id = self.vpc.id
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, opts=child)
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=self.vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            opts=child,
        )
        nats: list[aws.ec2.NatGateway] = []
        private_subnets: list[aws.ec2.Subnet] = []
        for index in range(args.zones):
            zone = zones.apply(lambda names, i=index: names[i])
            public = aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=self.vpc.id,
                cidr_block=public_cidrs[index],
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{index}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}-rta",
                subnet_id=public.id,
                route_table_id=public_routes.id,
                opts=child,
            )
            if index == 0 or args.nat_per_zone:
                eip = aws.ec2.Eip(f"{name}-nat-{index}-eip", domain="vpc", opts=child)
                nats.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{index}",
                        allocation_id=eip.id,
                        subnet_id=public.id,
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                    )
                )
            private = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=self.vpc.id,
                cidr_block=private_cidrs[index],
                availability_zone=zone,
                tags={"Name": f"{name}-private-{index}"},
                opts=child,
            )
            routes = aws.ec2.RouteTable(
                f"{name}-private-{index}-rt",
                vpc_id=self.vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nats[-1].id}],
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}-rta",
                subnet_id=private.id,
                route_table_id=routes.id,
                opts=child,
            )
            private_subnets.append(private)
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.function_sg = self._function_security_group(self.vpc.id)
        # Secrets are read at every cold start; keep that traffic off the NAT and inside AWS.
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoint-sg",
            description="Secrets Manager endpoint: HTTPS from the function only",
            vpc_id=self.vpc.id,
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "security_groups": [self.function_sg.id],
                    "description": "function to Secrets Manager",
                }
            ],
            opts=child,
        )
        self.secrets_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-secretsmanager",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{args.region}.secretsmanager",
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=self.private_subnet_ids,
            security_group_ids=[endpoint_sg.id],
            opts=child,
        )
