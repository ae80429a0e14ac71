"""A region's VPC: private subnets over two AZs behind NAT, public subnets for load balancers,
and one Local Zone subnet per edge site."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.config import EdgeSite

AZ_COUNT = 2  # EKS needs subnets in at least two AZs; more AZs add NAT cost, not resilience we use


@dataclass(frozen=True)
class NetworkArgs:
    cidr: str  # the region's /16; carved into subnets here
    edge_sites: list[EdgeSite] = field(default_factory=list)


def carve(cidr: str) -> tuple[list[str], list[str], list[str]]:
    """The region's /16 as (private /19 per AZ, public /24 per AZ, Local Zone /24 pool).

    Private subnets are large because EKS gives every pod a VPC address.
    """
    net = ipaddress.ip_network(cidr)
    if net.prefixlen != 16:
        raise ValueError(f"a region's network must be a /16, got {cidr}")
    private = [str(s) for s in list(net.subnets(new_prefix=19))[:AZ_COUNT]]
    upper = list(net.subnets(new_prefix=17))[1]  # 10.x.128.0/17: small subnets
    small = [str(s) for s in upper.subnets(new_prefix=24)]
    return private, small[:AZ_COUNT], small[32:]


def local_zone_group(location: str) -> str:
    """`us-east-1-nyc-2a` -> `us-east-1-nyc-2`: Local Zones are opted in per zone group."""
    return location[:-1]


class AwsNetwork(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    edge_subnet_ids: dict[str, pulumi.Output[str]]  # edge site name -> its Local Zone subnet

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:AwsNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        private_cidrs, public_cidrs, edge_cidrs = carve(args.cidr)
        if len(args.edge_sites) > len(edge_cidrs):
            raise ValueError(f"{name}: at most {len(edge_cidrs)} edge sites fit in {args.cidr}")

        # Only regular AZs: Local Zones are opted in and used explicitly per edge site.
        zones = aws.get_availability_zones_output(
            state="available",
            filters=[aws.GetAvailabilityZonesFilterArgs(name="zone-type", values=["availability-zone"])],
            opts=pulumi.InvokeOutputOptions(parent=self),
        )

        def zone(index: int) -> pulumi.Output[str]:
            def pick(names: list[str]) -> str:
                if len(names) < AZ_COUNT:
                    raise ValueError(f"{name}: needs {AZ_COUNT} availability zones, got {names}")
                return names[index]

            return zones.names.apply(pick)

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,  # EKS private endpoint and IRSA need DNS in the VPC
            enable_dns_support=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{name}-igw"}, opts=child
        )
        public_rt = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={"Name": f"{name}-public"},
            opts=child,
        )

        self.private_subnet_ids, self.public_subnet_ids = [], []
        private_tables: list[aws.ec2.RouteTable] = []
        for i in range(AZ_COUNT):
            public = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=vpc.id,
                cidr_block=public_cidrs[i],
                availability_zone=zone(i),
                map_public_ip_on_launch=False,  # only load balancers and NAT live here
                tags={"Name": f"{name}-public-{i}", "kubernetes.io/role/elb": "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}", subnet_id=public.id, route_table_id=public_rt.id, opts=child
            )
            eip = aws.ec2.Eip(
                f"{name}-nat-{i}", domain="vpc", tags={"Name": f"{name}-nat-{i}"}, opts=child
            )
            # One NAT per AZ: an AZ outage must not cut the other AZ's nodes off image pulls.
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{i}",
                subnet_id=public.id,
                allocation_id=eip.id,
                tags={"Name": f"{name}-nat-{i}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            private_rt = aws.ec2.RouteTable(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags={"Name": f"{name}-private-{i}"},
                opts=child,
            )
            private_tables.append(private_rt)
            private = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=private_cidrs[i],
                availability_zone=zone(i),
                tags={"Name": f"{name}-private-{i}", "kubernetes.io/role/internal-elb": "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}", subnet_id=private.id, route_table_id=private_rt.id, opts=child
            )
            self.public_subnet_ids.append(public.id)
            self.private_subnet_ids.append(private.id)

        self.edge_subnet_ids = {}
        for site, cidr in zip(args.edge_sites, edge_cidrs):
            opt_in = aws.ec2.AvailabilityZoneGroup(
                f"{name}-{site.name}-zone-group",
                group_name=local_zone_group(site.location),
                opt_in_status="opted-in",
                opts=child,
            )
            subnet = aws.ec2.Subnet(
                f"{name}-edge-{site.name}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=site.location,
                tags={"Name": f"{name}-edge-{site.name}", "meridian/edge-site": site.name},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[opt_in]),
            )
            # Egress through the parent region's NAT: a Local Zone has no NAT gateway of its own.
            aws.ec2.RouteTableAssociation(
                f"{name}-edge-{site.name}",
                subnet_id=subnet.id,
                route_table_id=private_tables[0].id,
                opts=child,
            )
            self.edge_subnet_ids[site.name] = subnet.id

        self.vpc_id = vpc.id
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "edgeSubnetIds": self.edge_subnet_ids,
            }
        )
