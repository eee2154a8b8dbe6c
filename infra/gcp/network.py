"""A private VPC the service and its Cloud SQL instance share (no public database address)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp


@dataclass
class PrivateNetworkArgs:
    """Inputs of :class:`PrivateNetwork`."""

    project: pulumi.Input[str]
    region: pulumi.Input[str]
    subnet_cidr: pulumi.Input[str] = "10.8.0.0/24"
    """Range of the subnet Cloud Run's Direct VPC egress takes addresses from."""
    peering_prefix_length: pulumi.Input[int] = 16
    """Size of the range reserved for Google-managed services (Cloud SQL private IP)."""
    network_name: str | None = None
    """Fixed network name, so the app stack attaches to it by id (default: auto-named)."""
    subnet_name: str | None = None


class PrivateNetwork(pulumi.ComponentResource):
    """VPC, subnet and private services access peering for Cloud SQL private IP.

    Cloud Run reaches the instance through Direct VPC egress on :attr:`subnet_id`; the instance
    gets an address only inside the peered range, so nothing on the internet can dial it.
    """

    network_id: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    peering: gcp.servicenetworking.Connection

    def __init__(
        self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:PrivateNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        network = gcp.compute.Network(
            f"{name}-vpc",
            project=args.project,
            name=args.network_name,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            opts=child,
        )
        subnet = gcp.compute.Subnetwork(
            f"{name}-subnet",
            project=args.project,
            name=args.subnet_name,
            region=args.region,
            network=network.id,
            ip_cidr_range=args.subnet_cidr,
            # Secret Manager, Artifact Registry and logging stay reachable without a NAT.
            private_ip_google_access=True,
            opts=child,
        )
        peering_range = gcp.compute.GlobalAddress(
            f"{name}-psa-range",
            project=args.project,
            network=network.id,
            purpose="VPC_PEERING",
            address_type="INTERNAL",
            prefix_length=args.peering_prefix_length,
            opts=child,
        )
        self.peering = gcp.servicenetworking.Connection(
            f"{name}-psa",
            network=network.id,
            service="servicenetworking.googleapis.com",
            reserved_peering_ranges=[peering_range.name],
            opts=child,
        )
        self.network_id = network.id
        self.subnet_id = subnet.id
        self.register_outputs({"network_id": self.network_id, "subnet_id": self.subnet_id})
