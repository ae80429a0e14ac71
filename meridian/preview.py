"""Offline preview: the real Pulumi program under `pulumi.runtime.set_mocks`.

There is no cloud account and no Pulumi CLI here, so `meridian preview` runs `__main__.py`
itself against a recording mock engine. Every registration is kept (type, name, parent,
provider and its region, engine-shaped inputs) and every invoke the program makes gets a
realistic answer, so the inventory is what `pulumi preview` would plan, minus the cloud.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import runpy
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.config import ConfigError, StackConfig, load_stack, stack_file

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "__main__.py"
PROJECT = "meridian"
ACCOUNT = "123456789012"
GCP_PROJECT_NUMBER = "271828182845"


class ProgramError(Exception):
    """The program stopped (a config mistake raises pulumi.RunError); keeps what it registered."""

    def __init__(self, message: str, inventory: Inventory):
        super().__init__(message)
        self.inventory = inventory


@dataclass
class Recorded:
    """One registered resource, as the engine would see it."""

    type: str
    name: str
    parent: str | None  # the parent's name (None: the stack)
    provider: str | None  # the explicit provider's name, e.g. "aws-us-east-1"
    region: str | None  # that provider's region / kubeconfig context
    custom: bool  # False for ComponentResources
    inputs: dict[str, Any]
    urn: str = ""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "urn"}


@dataclass
class Inventory:
    stack: str
    resources: list[Recorded] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, *types: str) -> list[Recorded]:
        return [r for r in self.resources if r.type in types]

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "resources": [r.to_json() for r in self.resources]}


def _urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:12]


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that also keeps each registration's parent and provider."""

    def __init__(self, mocks: _CloudMocks):
        super().__init__(mocks)
        self.cloud = mocks

    def RegisterResource(self, request: Any) -> Any:
        parent = request.parent
        is_root = not parent or "::pulumi:pulumi:Stack::" in parent
        self.cloud.pending_parent = None if is_root else _urn_name(parent)
        self.cloud.pending_custom = bool(request.custom)
        return super().RegisterResource(request)


class _CloudMocks(pulumi_mocks.Mocks):
    """Answers registrations and invokes the way AWS, GCP, Kubernetes and docker-build would."""

    def __init__(self, stack: str):
        self.stack = stack
        self.recorded: list[Recorded] = []
        self.provider_regions: dict[str, str | None] = {}  # provider resource name -> region
        self.pending_parent: str | None = None
        self.pending_custom = True

    # -- resources ---------------------------------------------------------------------------
    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
        provider = _urn_name(args.provider.rsplit("::", 1)[0]) if args.provider else None
        if args.typ.startswith("pulumi:providers:"):
            self.provider_regions[args.name] = args.inputs.get("region") or args.inputs.get(
                "context"
            )
        region = self.provider_regions.get(provider) if provider else None
        self.recorded.append(
            Recorded(
                type=args.typ,
                name=args.name,
                parent=self.pending_parent,
                provider=provider,
                region=region,
                custom=self.pending_custom,
                inputs=args.inputs,
            )
        )
        resource_id = f"{args.name}-{_short_hash(args.typ, args.name)}"
        return resource_id, {**args.inputs, **_outputs(args.typ, args.name, args.inputs, region)}

    # -- invokes -----------------------------------------------------------------------------
    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        provider = _urn_name(args.provider.rsplit("::", 1)[0]) if args.provider else None
        region = self.provider_regions.get(provider or "") or args.args.get("region") or "us-east-1"
        return _invoke(args.token, dict(args.args), str(region)), []


def _aws_arn(service: str, region: str | None, resource: str) -> str:
    return f"arn:aws:{service}:{region or ''}:{ACCOUNT}:{resource}"


def _outputs(typ: str, name: str, inputs: dict[str, Any], region: str | None) -> dict[str, Any]:
    """Computed outputs the program (or a test) reads, shaped as the providers return them."""
    physical = inputs.get("name") or inputs.get("bucket") or name
    token = typ.split(":")
    if token[0] == "aws":
        service = token[1].split("/")[0]
        out: dict[str, Any] = {"arn": _aws_arn(service, region, f"{physical}"), "id": physical}
        match typ:
            case "aws:eks/cluster:Cluster":
                out |= {
                    "endpoint": f"https://{_short_hash(name).upper()}.gr7.{region}.eks.amazonaws.com",
                    "certificateAuthority": {"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="},
                    "identities": [
                        {"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{_short_hash(name).upper()}"}]}
                    ],
                    "vpcConfig": {**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-{_short_hash(name)}"},
                    "version": inputs.get("version") or "1.33",
                    "status": "ACTIVE",
                }
            case "aws:iam/role:Role" | "aws:iam/policy:Policy":
                out["arn"] = f"arn:aws:iam::{ACCOUNT}:{typ.split(':')[-1].lower()}/{physical}"
            case "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
                url = str(inputs.get("url", "")).removeprefix("https://")
                out["arn"] = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{url}"
            case "aws:kms/key:Key":
                out |= {"keyId": _short_hash(name), "arn": _aws_arn("kms", region, f"key/{_short_hash(name)}")}
            case "aws:s3/bucket:Bucket" | "aws:s3/bucketV2:BucketV2":
                out |= {
                    "bucket": physical,
                    "arn": f"arn:aws:s3:::{physical}",
                    "bucketRegionalDomainName": f"{physical}.s3.{region}.amazonaws.com",
                    "bucketDomainName": f"{physical}.s3.amazonaws.com",
                    "region": region,
                }
            case "aws:ecr/repository:Repository":
                out["repositoryUrl"] = f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{physical}"
                out["registryId"] = ACCOUNT
            case "aws:cloudfront/distribution:Distribution":
                out |= {"domainName": f"d{_short_hash(name)}.cloudfront.net", "hostedZoneId": "Z2FDTNDATAQYW2"}
            case "aws:cloudfront/originAccessControl:OriginAccessControl":
                out["id"] = f"E{_short_hash(name).upper()}"
            case "aws:route53/zone:Zone":
                out |= {"zoneId": f"Z{_short_hash(name).upper()}", "nameServers": ["ns-1.awsdns-01.org"]}
            case "aws:ec2/vpc:Vpc":
                out["id"] = f"vpc-{_short_hash(name)}"
            case "aws:ec2/subnet:Subnet":
                out["id"] = f"subnet-{_short_hash(name)}"
            case "aws:ec2/securityGroup:SecurityGroup":
                out["id"] = f"sg-{_short_hash(name)}"
            case "aws:lb/loadBalancer:LoadBalancer":
                out["dnsName"] = f"{physical}-{_short_hash(name)}.elb.{region}.amazonaws.com"
            case "aws:acm/certificate:Certificate":
                out["domainValidationOptions"] = [
                    {
                        "domainName": inputs.get("domainName"),
                        "resourceRecordName": f"_{_short_hash(name)}.{inputs.get('domainName')}.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": f"_{_short_hash(name, 'v')}.acm-validations.aws.",
                    }
                ]
        return out
    if token[0] == "gcp":
        project = inputs.get("project") or "meridian"
        out = {
            "id": f"projects/{project}/{token[1].split('/')[0]}/{physical}",
            "selfLink": f"https://www.googleapis.com/{token[1]}/v1/projects/{project}/{physical}",
            "name": physical,
        }
        match typ:
            case "gcp:container/cluster:Cluster":
                out |= {
                    "endpoint": f"10.{len(name) % 250}.0.2",
                    "masterAuth": {"clusterCaCertificate": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="},
                    "location": inputs.get("location") or region,
                }
            case "gcp:serviceaccount/account:Account":
                account = inputs.get("accountId") or name
                out |= {
                    "email": f"{account}@{project}.iam.gserviceaccount.com",
                    "member": f"serviceAccount:{account}@{project}.iam.gserviceaccount.com",
                }
            case "gcp:storage/bucket:Bucket":
                out["url"] = f"gs://{physical}"
            case "gcp:compute/globalAddress:GlobalAddress":
                out["address"] = f"34.{len(name) % 250}.{len(physical) % 250}.10"
            case "gcp:artifactregistry/repository:Repository":
                out["registryUri"] = (
                    f"{inputs.get('location') or region}-docker.pkg.dev/{project}/{inputs.get('repositoryId') or physical}"
                )
            case "gcp:kms/cryptoKey:CryptoKey":
                out["id"] = f"{inputs.get('keyRing')}/cryptoKeys/{physical}"
            case "gcp:dns/managedZone:ManagedZone":
                out["nameServers"] = ["ns-cloud-a1.googledomains.com."]
        return out
    if typ == "kubernetes:core/v1:Service":
        spec = inputs.get("spec") or {}
        if spec.get("type") == "LoadBalancer":
            if (region or "").startswith("gke_"):  # GKE load balancers answer with an IP
                ip = f"34.{int(_short_hash(name)[:2], 16)}.{int(_short_hash(name)[2:4], 16)}.{len(name) % 250}"
                return {"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}
            host = f"{name}-{_short_hash(name)}.lb.{region or 'cluster'}.example.net"
            return {"status": {"loadBalancer": {"ingress": [{"hostname": host}]}}}
        return {"spec": {**spec, "clusterIP": f"10.96.{len(name) % 250}.{len(typ) % 250}"}}
    if typ.startswith("tls:"):
        return _tls_outputs(typ, name)
    if typ == "docker-build:index:Image":
        digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
        tags = inputs.get("tags") or [f"registry.example/{name}:latest"]
        repo = str(tags[0]).rsplit(":", 1)[0]
        return {"digest": digest, "ref": f"{repo}@{digest}"}
    return {}


def _pem(kind: str, name: str) -> str:
    return f"-----BEGIN {kind}-----\n{_short_hash(kind, name)}\n-----END {kind}-----\n"


def _tls_outputs(typ: str, name: str) -> dict[str, Any]:
    """pulumi-tls generates keys and certificates in the engine: PEM-shaped stand-ins here."""
    match typ:
        case "tls:index/privateKey:PrivateKey":
            return {
                "privateKeyPem": _pem("PRIVATE KEY", name),
                "privateKeyOpenssh": _pem("OPENSSH PRIVATE KEY", name),
                "publicKeyPem": _pem("PUBLIC KEY", name),
                "publicKeyOpenssh": f"ecdsa-sha2-nistp384 {_short_hash('pub', name)}",
            }
        case "tls:index/selfSignedCert:SelfSignedCert" | "tls:index/locallySignedCert:LocallySignedCert":
            return {"certPem": _pem("CERTIFICATE", name)}
        case "tls:index/certRequest:CertRequest":
            return {"certRequestPem": _pem("CERTIFICATE REQUEST", name)}
    return {}


def _invoke(token: str, args: dict[str, Any], region: str) -> dict[str, Any]:
    match token:
        case "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {
                "names": [f"{region}{z}" for z in "abc"],
                "zoneIds": [f"{region[:3]}{region[-1]}-az{i}" for i in (1, 2, 3)],
                "id": region,
            }
        case "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "userId": "AIDA0", "id": ACCOUNT}
        case "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        case "aws:index/getRegion:getRegion":
            return {"name": region, "region": region, "id": region, "endpoint": f"ec2.{region}.amazonaws.com"}
        case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {
                "userName": "AWS",
                "password": "mock-ecr-password",
                "authorizationToken": "QVdTOm1vY2s=",
                "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{region}.amazonaws.com",
                "id": region,
            }
        case "aws:iam/getPolicyDocument:getPolicyDocument":
            return {"json": json.dumps(_policy_document(args)), "id": "policy"}
        case "aws:ssm/getParameter:getParameter":
            return {"value": "ami-0123456789abcdef0", "name": args.get("name"), "id": args.get("name")}
        case "aws:eks/getAddonVersion:getAddonVersion":
            return {"version": "v1.0.0-eksbuild.1", "id": args.get("addonName")}
        case "gcp:organizations/getClientConfig:getClientConfig":
            return {"accessToken": "mock-gcp-token", "project": "meridian", "region": region, "id": "client"}
        case "gcp:organizations/getProject:getProject":
            return {"number": GCP_PROJECT_NUMBER, "projectId": args.get("projectId") or "meridian", "id": "p"}
        case "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            email = f"service-{GCP_PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com"
            return {"emailAddress": email, "member": f"serviceAccount:{email}", "id": email}
        case "gcp:compute/getZones:getZones":
            return {"names": [f"{region}-{z}" for z in "abc"], "id": region}
        case "gcp:container/getEngineVersions:getEngineVersions":
            return {
                "latestMasterVersion": "1.33.5-gke.1000",
                "latestNodeVersion": "1.33.5-gke.1000",
                "defaultClusterVersion": "1.33.5-gke.1000",
                "releaseChannelDefaultVersion": {"REGULAR": "1.33.5-gke.1000"},
                "id": region,
            }
    return {"id": token}


def _policy_document(args: dict[str, Any]) -> dict[str, Any]:
    """What aws.iam.get_policy_document renders: the statements in IAM's own JSON shape."""
    statements = []
    for s in args.get("statements") or []:
        out: dict[str, Any] = {"Effect": s.get("effect", "Allow")}
        for key, iam_key in (("actions", "Action"), ("resources", "Resource"), ("sid", "Sid")):
            if s.get(key):
                out[iam_key] = s[key]
        for principal in s.get("principals") or []:
            out.setdefault("Principal", {})[principal["type"]] = principal["identifiers"]
        for condition in s.get("conditions") or []:
            out.setdefault("Condition", {}).setdefault(condition["test"], {})[
                condition["variable"]
            ] = condition["values"]
        statements.append(out)
    return {"Version": "2012-10-17", "Statement": statements}


def _pulumi_config(config: StackConfig | dict[str, Any]) -> dict[str, str]:
    """The stack config as the engine hands it to the program: `meridian:<key>` -> JSON."""
    values = (
        config.model_dump(mode="json", by_alias=True)
        if isinstance(config, StackConfig)
        else config
    )
    return {
        f"meridian:{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in values.items()
    }


# Provider settings a stack file carries beside `meridian:` (e.g. `gcp:project`), for configs
# made in code (benchmarks, tests) that have no stack file.
DEFAULT_PROVIDER_CONFIG = {"gcp:project": "meridian-preview"}


def provider_config(stack: str) -> dict[str, str]:
    """The stack file's non-`meridian:` scalar keys (`gcp:project`, `aws:region`)."""
    document = yaml.safe_load(stack_file(stack).read_text()) or {}
    return {
        key: str(value)
        for key, value in (document.get("config") or {}).items()
        if not key.startswith("meridian:") and isinstance(value, str | int | bool)
    }


def run_program(
    config: StackConfig | dict[str, Any],
    stack: str,
    program: Path = PROGRAM,
    providers: dict[str, str] | None = None,
) -> Inventory:
    """Run __main__.py under mocks for this config; return every registration and export.

    `config` is a validated StackConfig, or raw `meridian:` values (namespace stripped) as a
    stack file holds them, to see how the program itself treats a malformed stack.
    `providers` are the provider keys of the stack file (default: DEFAULT_PROVIDER_CONFIG).
    """
    cloud = _CloudMocks(stack)
    monitor = _RecordingMonitor(cloud)
    pulumi_settings.ROOT.set(None)  # a fresh root Stack per run: outputs never leak across runs
    pulumi.runtime.set_mocks(cloud, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(
        {**(DEFAULT_PROVIDER_CONFIG if providers is None else providers), **_pulumi_config(config)}
    )
    program_sys_path = str(ROOT)
    if program_sys_path not in sys.path:
        sys.path.insert(0, program_sys_path)

    def run() -> None:
        runpy.run_path(str(program), run_name="__pulumi__")

    try:
        _sync_await(run_pulumi_func(run))
    except pulumi.RunError as err:
        raise ProgramError(str(err), Inventory(stack=stack, resources=cloud.recorded)) from None
    stack_resource = pulumi_settings.get_root_resource()
    exported = dict(getattr(stack_resource, "outputs", {}) or {})
    outputs = {k: _sync_await(pulumi.Output.from_input(v).future()) for k, v in exported.items()}
    return Inventory(stack=stack, resources=cloud.recorded, outputs=outputs)


def preview_stack(stack: str) -> Inventory:
    """Load `stacks/Pulumi.<stack>.yaml` (ConfigError names the mistake) and run it."""
    return run_program(load_stack(stack), stack, providers=provider_config(stack))


def _table(inventory: Inventory) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"meridian preview: stack {inventory.stack}", show_lines=False)
    for column in ("type", "name", "parent", "provider/region"):
        table.add_column(column, overflow="fold")
    for r in inventory.resources:
        where = f"{r.provider or '-'} ({r.region})" if r.region else (r.provider or "-")
        table.add_row(r.type, r.name, r.parent or "-", where)
    console = Console()
    console.print(table)
    custom = sum(r.custom for r in inventory.resources)
    console.print(f"{custom} resources, {len(inventory.resources) - custom} components")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="meridian preview", description="Run the Pulumi program offline, under mocks."
    )
    parser.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--json", action="store_true", help="print the inventory as JSON")
    args = parser.parse_args(argv)
    try:
        inventory = preview_stack(args.stack)
    except (ConfigError, ProgramError) as err:
        print(err, file=sys.stderr)
        return 2
    if args.json:
        json.dump(inventory.to_json(), sys.stdout, indent=1, default=str)
        print()
    else:
        _table(inventory)
    return 0
