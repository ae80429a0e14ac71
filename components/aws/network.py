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
    # on the private subnets only, e.g. `karpenter.sh/discovery: <cluster>`: what node
    # provisioners launch into (never the public subnets, nor a Local Zone)
    private_subnet_tags: dict[str, str] = field(default_factory=dict)


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
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{name}-igw"}, opts=child)

        def default_route(suffix: str, **target: pulumi.Input[str]) -> aws.ec2.RouteTable:
            """A route table sending everything off the VPC to `target` (a gateway_id or nat_gateway_id)."""
            return aws.ec2.RouteTable(
                f"{name}-{suffix}",
                vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", **target)],
                tags={"Name": f"{name}-{suffix}"},
                opts=child,
            )

        def subnet(
            suffix: str,
            cidr: str,
            zone: pulumi.Input[str],
            table: aws.ec2.RouteTable,
            tags: dict[str, str],
            opts: pulumi.ResourceOptions = child,
            map_public_ip_on_launch: bool | None = None,
        ) -> aws.ec2.Subnet:
            """A subnet named `<name>-<suffix>`, routed through `table`."""
            created = aws.ec2.Subnet(
                f"{name}-{suffix}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                map_public_ip_on_launch=map_public_ip_on_launch,
                tags={"Name": f"{name}-{suffix}", **tags},
                opts=opts,
            )
            aws.ec2.RouteTableAssociation(f"{name}-{suffix}", subnet_id=created.id, route_table_id=table.id, opts=child)
            return created

        public_rt = default_route("public", gateway_id=igw.id)
        self.private_subnet_ids, self.public_subnet_ids = [], []
        private_tables: list[aws.ec2.RouteTable] = []
        for i in range(AZ_COUNT):
            public = subnet(
                f"public-{i}",
                public_cidrs[i],
                zone(i),
                public_rt,
                {"kubernetes.io/role/elb": "1"},
                map_public_ip_on_launch=False,  # only load balancers and NAT live here
            )
            eip = aws.ec2.Eip(f"{name}-nat-{i}", domain="vpc", tags={"Name": f"{name}-nat-{i}"}, opts=child)
            # One NAT per AZ: an AZ outage must not cut the other AZ's nodes off image pulls.
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{i}",
                subnet_id=public.id,
                allocation_id=eip.id,
                tags={"Name": f"{name}-nat-{i}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            private_rt = default_route(f"private-{i}", nat_gateway_id=nat.id)
            private_tables.append(private_rt)
            private = subnet(
                f"private-{i}",
                private_cidrs[i],
                zone(i),
                private_rt,
                {"kubernetes.io/role/internal-elb": "1", **args.private_subnet_tags},
            )
            self.public_subnet_ids.append(public.id)
            self.private_subnet_ids.append(private.id)

        self.edge_subnet_ids = {}
        # Sites beyond the pool were refused above: zip stops at the last site.
        for site, cidr in zip(args.edge_sites, edge_cidrs, strict=False):
            opt_in = aws.ec2.AvailabilityZoneGroup(
                f"{name}-{site.name}-zone-group",
                group_name=local_zone_group(site.location),
                opt_in_status="opted-in",
                opts=child,
            )
            # Egress through the parent region's NAT: a Local Zone has no NAT gateway of its own.
            self.edge_subnet_ids[site.name] = subnet(
                f"edge-{site.name}",
                cidr,
                site.location,
                private_tables[0],
                {"meridian/edge-site": site.name},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[opt_in]),
            ).id

        self.vpc_id = vpc.id
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "edgeSubnetIds": self.edge_subnet_ids,
            }
        )
