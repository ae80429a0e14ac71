"""The offline engine: run a Pulumi program in-process against mocks that answer like the clouds.

There is no cloud account and no Pulumi CLI here, so `meridian preview` (the whole program)
and the component tests (one layer alone) run under `pulumi.runtime.set_mocks` through
`run_under_mocks(program)`. `CloudMocks`, the one mock class, records every registration
(type, name, parent, provider and its region, engine-shaped inputs, which of them arrive as
Pulumi secrets, what a component registers as its outputs) and answers it and every invoke as
AWS, GCP, Kubernetes, pulumi-tls, pulumi-random and docker-build would, including what the engine adds itself:
the provider's default tags and labels (`tagsAll`, `pulumiLabels`) and the refusal of a default
provider that `pulumi:disable-default-providers` turns off.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import pulumi
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks as pulumi_mocks

from components.pulumi_internals import fresh_root_stack, run_to_completion, stack_outputs, stack_outputs_on_the_wire

PROJECT = "meridian"
ACCOUNT = "123456789012"
GCP_PROJECT_NUMBER = "271828182845"
DISABLE_DEFAULT_PROVIDERS = "pulumi:disable-default-providers"
# A real Ed25519 public key (SubjectPublicKeyInfo PEM, as Cloud KMS's getPublicKey returns it):
# the one of the private key whose 32 bytes are 0x00..0x1f, so a test may sign and verify with it.
ED25519_PUBLIC_KEY_PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n-----END PUBLIC KEY-----\n"
# The credentials the mocked invokes hand out (registry passwords, access tokens): a test can
# follow them through the program the way it follows the PEM stand-ins of pulumi-tls keys.
# The stand-in API key secrets below carry MOCK_API_KEY too.
MOCK_API_KEY = "mock-api-key"
MOCK_CREDENTIALS = ("mock-ecr-password", "QVdTOm1vY2s=", "mock-gcp-token", MOCK_API_KEY)
# The stack's secret config (components/config.py SECRET_KEYS) is not in its file: the CLI keeps
# it, encrypted, in the stack's settings. Offline runs stand in for it as the engine hands it
# over, marked secret: a secret for every API key id of `meridian:auth` (unless given).
API_KEYS_CONFIG = "meridian:apiKeys"

# How the SDK marks a secret on the wire: {SECRET_SIG_KEY: SECRET_SIG, "value": <the value>}
# (pulumi/runtime/rpc.py). The deserialized inputs keep the mark, pushed up to the top-level
# property; the wire form has it exactly where the secret sits, so paths are read from there.
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

PropertyPath = tuple[str | int, ...]  # keys and list indices from the top-level property down


def secret_paths(wire: struct_pb2.Struct) -> list[PropertyPath]:
    """Where a serialized property map carries a secret (the outermost mark of each)."""

    def walk(value: Any, path: PropertyPath) -> Iterator[PropertyPath]:
        if isinstance(value, struct_pb2.Struct):
            if SECRET_SIG_KEY in value.fields and value[SECRET_SIG_KEY] == SECRET_SIG:
                yield path
                return
            for key, item in value.items():
                yield from walk(item, (*path, key))
        elif isinstance(value, struct_pb2.ListValue):
            for index, item in enumerate(value):
                yield from walk(item, (*path, index))

    return sorted(walk(wire, ()), key=str)


def _mark_secret(value: struct_pb2.Value) -> None:
    """Wrap a serialized value in the secret mark, in place."""
    plain = struct_pb2.Value()
    plain.CopyFrom(value)
    value.struct_value.fields[SECRET_SIG_KEY].string_value = SECRET_SIG
    value.struct_value.fields["value"].CopyFrom(plain)


def unmarked(value: Any) -> Any:
    """A deserialized value without its secret marks (what the program passed, in plain text)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG:
            return unmarked(value.get("value"))
        return {k: unmarked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unmarked(v) for v in value]
    return value


def short_hash(*parts: str) -> str:
    """The stable hash the mocks put into ids, ARNs and hostnames (tests rebuild them with it)."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:12]


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
    outputs: dict[str, Any] = field(default_factory=dict)  # what the engine adds: ids, tagsAll, ...
    ignore_changes: list[str] = field(default_factory=list)  # the `ignore_changes` option, as sent
    # names of the resources it waits for (explicit `depends_on`, a component expanded to its
    # custom children, and those its inputs come from), as the SDK sends them to the engine
    dependencies: list[str] = field(default_factory=list)
    urn: str = ""
    secret_inputs: list[PropertyPath] = field(default_factory=list)  # where the inputs arrive as secrets
    # a component's `register_outputs` (they land in state too), plain, and where they are secret
    registered_outputs: dict[str, Any] = field(default_factory=dict)
    secret_registered_outputs: list[PropertyPath] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        internal = ("outputs", "ignore_changes", "dependencies", "urn", "secret_inputs", "registered_outputs")
        return {k: v for k, v in asdict(self).items() if k not in (*internal, "secret_registered_outputs")}


@dataclass
class Inventory:
    """Everything one run registered, and what the program exported."""

    stack: str
    resources: list[Recorded] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: list[PropertyPath] = field(default_factory=list)  # exports that state keeps as secrets

    def of_type(self, *types: str) -> list[Recorded]:
        return [r for r in self.resources if r.type in types]

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "resources": [r.to_json() for r in self.resources]}


class ProgramError(Exception):
    """The program stopped (a config mistake raises pulumi.RunError); keeps what it registered."""

    def __init__(self, message: str, inventory: Inventory):
        super().__init__(message)
        self.inventory = inventory


def _urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _provider_name(reference: str | None) -> str | None:
    """A provider reference is `<provider urn>::<id>`: its resource name."""
    return _urn_name(reference.rsplit("::", 1)[0]) if reference else None


@cache
def resource_class(type_token: str) -> type | None:
    """The SDK class of a provider resource type (`aws:ec2/vpc:Vpc` -> pulumi_aws.ec2.Vpc)."""
    package, module, name = type_token.split(":")
    try:
        root = importlib.import_module(f"pulumi_{package.replace('-', '_')}")
        module = module.split("/")[0]
        owner = root if module == "index" else importlib.import_module(f"{root.__name__}.{module}")
    except ImportError:
        return None
    return getattr(owner, name, None) or getattr(owner, name[:1].upper() + name[1:], None)


def _has(type_token: str, attribute: str) -> bool:
    cls = resource_class(type_token)
    return cls is not None and hasattr(cls, attribute)


@dataclass(frozen=True)
class _Registration:
    """What the engine sees of a registration beyond MockResourceArgs (parent, kind, options)."""

    parent: str | None = None
    custom: bool = True
    ignore_changes: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    urn: str = ""
    secret_inputs: list[PropertyPath] = field(default_factory=list)


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that also hands each registration's parent, kind and options to the mocks, and
    marks the outputs a resource declares secret (`additional_secret_outputs`: pulumi-tls private
    keys, ...) as the engine does; the SDK's MockMonitor leaves them plain."""

    def __init__(self, mocks: CloudMocks):
        super().__init__(mocks)
        self.cloud = mocks
        self._one_at_a_time = threading.Lock()  # the SDK registers from several threads

    def RegisterResource(self, request: Any) -> Any:
        parent = request.parent
        is_root = not parent or "::pulumi:pulumi:Stack::" in parent
        with self._one_at_a_time:
            self.cloud.pending = _Registration(
                parent=None if is_root else _urn_name(parent),
                custom=bool(request.custom),
                ignore_changes=list(request.ignoreChanges),
                dependencies=sorted({_urn_name(u) for u in request.dependencies}),
                urn=self.make_urn(request.parent, request.type, request.name),
                secret_inputs=secret_paths(request.object),
            )
            response = super().RegisterResource(request)
        for name in request.additionalSecretOutputs:
            if name in response.object.fields:
                _mark_secret(response.object.fields[name])
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        """A component's `register_outputs`: kept on its record, secrets marked as sent."""
        outputs = json_format.MessageToDict(request.outputs)
        with self._one_at_a_time:
            for recorded in self.cloud.recorded:
                if recorded.urn == request.urn:
                    recorded.registered_outputs = unmarked(outputs)
                    recorded.secret_registered_outputs = secret_paths(request.outputs)
        return super().RegisterResourceOutputs(request)


class CloudMocks(pulumi_mocks.Mocks):
    """Answers registrations and invokes the way AWS, GCP, Kubernetes, tls and docker-build would."""

    def __init__(self, config: dict[str, str]):
        self.recorded: list[Recorded] = []
        self.provider_regions: dict[str, str | None] = {}  # provider resource name -> region
        self.provider_defaults: dict[str, dict[str, str]] = {}  # provider name -> default tags/labels
        self.disabled_defaults = set(json.loads(config.get(DISABLE_DEFAULT_PROVIDERS, "[]")))
        self.domain = str(_json_or_empty(config.get("meridian:dns")).get("domain") or "example.com")
        self.pending = _Registration()  # the registration new_resource is answering

    def _explicit(self, package: str, provider: str | None, what: str) -> None:
        """The engine refuses a default provider the stack disabled: so do the mocks."""
        if provider is None and package != "pulumi" and self.disabled_defaults & {package, "*"}:
            raise pulumi.RunError(f"{what} would use the default {package} provider, which the stack disables")

    # -- resources ---------------------------------------------------------------------------
    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
        provider = _provider_name(args.provider)
        if self.pending.custom:
            self._explicit(args.typ.split(":")[0], provider, f"{args.typ} {args.name}")
        if args.typ.startswith("pulumi:providers:"):
            self.provider_regions[args.name] = args.inputs.get("region") or args.inputs.get("context")
            self.provider_defaults[args.name] = _default_tags_or_labels(args.inputs)
        region = self.provider_regions.get(provider) if provider else None
        outputs = _outputs(args.typ, args.name, args.inputs, region) | self._tags_all(args, provider)
        self.recorded.append(
            Recorded(
                type=args.typ,
                name=args.name,
                parent=self.pending.parent,
                provider=provider,
                region=region,
                custom=self.pending.custom,
                inputs=args.inputs,
                outputs=outputs,
                ignore_changes=self.pending.ignore_changes,
                dependencies=self.pending.dependencies,
                urn=self.pending.urn,
                secret_inputs=self.pending.secret_inputs,
            )
        )
        resource_id = f"{args.name}-{short_hash(args.typ, args.name)}"
        return resource_id, {**args.inputs, **outputs}

    def _tags_all(self, args: pulumi_mocks.MockResourceArgs, provider: str | None) -> dict[str, Any]:
        """The provider's default tags (AWS) or labels (GCP) merged under the resource's own,
        as the real providers report them; the SDK does not apply them under mocks."""
        defaults = self.provider_defaults.get(provider or "", {})
        if args.typ.startswith("aws:") and _has(args.typ, "tags_all"):
            return {"tagsAll": {**defaults, **(args.inputs.get("tags") or {})}}
        if args.typ.startswith("gcp:") and _has(args.typ, "pulumi_labels"):
            own = args.inputs.get("labels") or args.inputs.get("resourceLabels") or {}
            return {"pulumiLabels": {**defaults, **own}}
        return {}

    # -- invokes -----------------------------------------------------------------------------
    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        provider = _provider_name(args.provider)
        self._explicit(args.token.split(":")[0], provider, f"invoke {args.token}")
        region = self.provider_regions.get(provider or "") or args.args.get("region") or "us-east-1"
        return _invoke(args.token, dict(args.args), str(region), self.domain), []


def _json_or_empty(text: str | None) -> dict[str, Any]:
    """A structured config value (JSON text) as a mapping; {} when absent or not JSON."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _default_tags_or_labels(inputs: dict[str, Any]) -> dict[str, str]:
    """A provider's `defaultTags.tags` (AWS) or `defaultLabels` (GCP); nested provider inputs
    arrive as JSON strings, as the engine passes them."""

    def parsed(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    if "defaultTags" in inputs:
        return dict((parsed(inputs["defaultTags"]) or {}).get("tags") or {})
    return dict(parsed(inputs.get("defaultLabels")) or {})


def run_under_mocks(
    program: Callable[[], None], stack: str = "test", config: dict[str, str] | None = None
) -> Inventory:
    """Run `program` (it registers resources) under fresh mocks with this engine config
    (`meridian:<key>` -> JSON text); every registration and the stack's exports.

    A program that stops with pulumi.RunError raises ProgramError, which keeps what it registered.
    """
    config = _with_stand_in_secrets(config or {})
    mocks = CloudMocks(config)
    fresh_root_stack()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=_RecordingMonitor(mocks))
    pulumi.runtime.set_all_config(config, secret_keys=[API_KEYS_CONFIG] if API_KEYS_CONFIG in config else None)
    try:
        run_to_completion(program)
    except pulumi.RunError as err:
        raise ProgramError(str(err), Inventory(stack=stack, resources=mocks.recorded)) from None
    return Inventory(
        stack=stack,
        resources=mocks.recorded,
        outputs=stack_outputs(),
        secret_outputs=secret_paths(stack_outputs_on_the_wire()),
    )


def _with_stand_in_secrets(config: dict[str, str]) -> dict[str, str]:
    key_ids = _json_or_empty(config.get("meridian:auth")).get("apiKeys") or []
    if API_KEYS_CONFIG in config or not key_ids:
        return config
    return {**config, API_KEYS_CONFIG: json.dumps({key_id: f"{MOCK_API_KEY}-{key_id}" for key_id in key_ids})}


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
                    "endpoint": f"https://{short_hash(name).upper()}.gr7.{region}.eks.amazonaws.com",
                    "certificateAuthority": {"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="},
                    "identities": [
                        {
                            "oidcs": [
                                {"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{short_hash(name).upper()}"}
                            ]
                        }
                    ],
                    "vpcConfig": {**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-{short_hash(name)}"},
                    "version": inputs.get("version") or "1.33",
                    "status": "ACTIVE",
                }
            case "aws:iam/role:Role" | "aws:iam/policy:Policy":
                out["arn"] = f"arn:aws:iam::{ACCOUNT}:{typ.split(':')[-1].lower()}/{physical}"
                out["name"] = physical  # auto-named by the provider when the program gives none
            case "aws:cloudwatch/eventRule:EventRule":
                out["name"] = physical  # auto-named, as a role
            case "aws:iam/instanceProfile:InstanceProfile":
                out |= {"arn": f"arn:aws:iam::{ACCOUNT}:instance-profile/{physical}", "name": physical}
            case "aws:sqs/queue:Queue":
                out |= {"name": physical, "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{physical}"}
            case "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
                url = str(inputs.get("url", "")).removeprefix("https://")
                out["arn"] = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{url}"
            case "aws:kms/key:Key":
                out |= {"keyId": short_hash(name), "arn": _aws_arn("kms", region, f"key/{short_hash(name)}")}
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
                out |= {"domainName": f"d{short_hash(name)}.cloudfront.net", "hostedZoneId": "Z2FDTNDATAQYW2"}
            case "aws:cloudfront/originAccessControl:OriginAccessControl":
                out["id"] = f"E{short_hash(name).upper()}"
            case "aws:route53/zone:Zone":
                out |= {"zoneId": f"Z{short_hash(name).upper()}", "nameServers": ["ns-1.awsdns-01.org"]}
            case "aws:ec2/vpc:Vpc":
                out["id"] = f"vpc-{short_hash(name)}"
            case "aws:ec2/subnet:Subnet":
                out["id"] = f"subnet-{short_hash(name)}"
            case "aws:ec2/securityGroup:SecurityGroup":
                out["id"] = f"sg-{short_hash(name)}"
            case "aws:lb/loadBalancer:LoadBalancer":
                out["dnsName"] = f"{physical}-{short_hash(name)}.elb.{region}.amazonaws.com"
            case "aws:acm/certificate:Certificate":
                # One option per name; ACM's record follows the name alone (the same for every
                # certificate of the account), and a wildcard's is its base name's.
                names = [inputs.get("domainName"), *(inputs.get("subjectAlternativeNames") or [])]
                out["domainValidationOptions"] = [
                    {
                        "domainName": n,
                        "resourceRecordName": f"_{short_hash(str(n).removeprefix('*.'))}.{str(n).removeprefix('*.')}.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": f"_{short_hash(str(n).removeprefix('*.'), 'v')}.acm-validations.aws.",
                    }
                    for n in names
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
            case "gcp:certificatemanager/dnsAuthorization:DnsAuthorization":
                # the default FIXED_RECORD type: the same record name for the domain in any project
                out["dnsResourceRecords"] = [
                    {
                        "name": f"_acme-challenge.{inputs.get('domain')}.",
                        "type": "CNAME",
                        "data": f"{short_hash(name)}.9.authorize.certificatemanager.goog.",
                    }
                ]
        return out
    if typ == "kubernetes:core/v1:Service":
        spec = inputs.get("spec") or {}
        if spec.get("type") == "LoadBalancer":
            if (region or "").startswith("gke_"):  # GKE load balancers answer with an IP
                ip = f"34.{int(short_hash(name)[:2], 16)}.{int(short_hash(name)[2:4], 16)}.{len(name) % 250}"
                return {"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}
            host = f"{name}-{short_hash(name)}.lb.{region or 'cluster'}.example.net"
            return {"status": {"loadBalancer": {"ingress": [{"hostname": host}]}}}
        return {"spec": {**spec, "clusterIP": f"10.96.{len(name) % 250}.{len(typ) % 250}"}}
    if typ.startswith("tls:"):
        return _tls_outputs(typ, name)
    if typ == "random:index/randomPassword:RandomPassword":
        # pulumi-random generates it in the engine: a stand-in of the asked length, stable per name
        # and keepers (a changed keeper replaces the password)
        length = int(inputs.get("length") or 16)
        seed = short_hash("password", name, json.dumps(inputs.get("keepers") or {}, sort_keys=True))
        return {"result": (seed * length)[:length], "bcryptHash": f"$2a$10${short_hash(name)}"}
    if typ == "random:index/randomBytes:RandomBytes":
        data = hashlib.sha256(name.encode()).digest()[: int(inputs.get("length") or 32)]
        return {"hex": data.hex(), "base64": base64.b64encode(data).decode()}
    if typ == "docker-build:index:Image":
        digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
        tags = inputs.get("tags") or [f"registry.example/{name}:latest"]
        return {"digest": digest, "ref": f"{tags[0]}@{digest}"}  # the first tag, pinned by digest
    return {}


def _pem(kind: str, name: str) -> str:
    return f"-----BEGIN {kind}-----\n{short_hash(kind, name)}\n-----END {kind}-----\n"


def _tls_outputs(typ: str, name: str) -> dict[str, Any]:
    """pulumi-tls generates keys and certificates in the engine: PEM-shaped stand-ins here."""
    match typ:
        case "tls:index/privateKey:PrivateKey":
            return {
                "privateKeyPem": _pem("PRIVATE KEY", name),
                "privateKeyOpenssh": _pem("OPENSSH PRIVATE KEY", name),
                "publicKeyPem": _pem("PUBLIC KEY", name),
                "publicKeyOpenssh": f"ecdsa-sha2-nistp384 {short_hash('pub', name)}",
            }
        case "tls:index/selfSignedCert:SelfSignedCert" | "tls:index/locallySignedCert:LocallySignedCert":
            return {"certPem": _pem("CERTIFICATE", name)}
        case "tls:index/certRequest:CertRequest":
            return {"certRequestPem": _pem("CERTIFICATE REQUEST", name)}
    return {}


def _invoke(token: str, args: dict[str, Any], region: str, domain: str = "example.com") -> dict[str, Any]:
    """`domain`: the stack's (`meridian:dns`), which an existing zone the stack names serves."""
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
                "password": MOCK_CREDENTIALS[0],
                "authorizationToken": MOCK_CREDENTIALS[1],
                "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{region}.amazonaws.com",
                "id": region,
            }
        case "aws:iam/getPolicyDocument:getPolicyDocument":
            return {"json": json.dumps(_policy_document(args)), "id": "policy"}
        case "aws:ssm/getParameter:getParameter":
            return {"value": "ami-0123456789abcdef0", "name": args.get("name"), "id": args.get("name")}
        case "aws:kms/getPublicKey:getPublicKey":  # an ECC_NIST_EDWARDS25519 key's, as KMS hands it out
            key = str(args.get("keyId"))
            spki = _ED25519_SPKI_PREFIX + ed25519_public_key(hashlib.sha256(key.encode()).digest())
            encoded = base64.b64encode(spki).decode()
            return {
                "id": key,
                "keyId": key,
                "arn": key,
                "customerMasterKeySpec": "ECC_NIST_EDWARDS25519",
                "keyUsage": "SIGN_VERIFY",
                "signingAlgorithms": ["ED25519_SHA_512", "ED25519_PH_SHA_512"],
                "encryptionAlgorithms": [],
                "publicKey": encoded,
                "publicKeyPem": f"-----BEGIN PUBLIC KEY-----\n{encoded}\n-----END PUBLIC KEY-----\n",
                "region": region,
            }
        case "aws:eks/getAddonVersion:getAddonVersion":
            return {"version": "v1.0.0-eksbuild.1", "id": args.get("addonName")}
        case "gcp:organizations/getClientConfig:getClientConfig":
            return {"accessToken": MOCK_CREDENTIALS[2], "project": "meridian", "region": region, "id": "client"}
        case "gcp:organizations/getProject:getProject":
            return {"number": GCP_PROJECT_NUMBER, "projectId": args.get("projectId") or "meridian", "id": "p"}
        case "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            email = f"service-{GCP_PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com"
            return {"emailAddress": email, "member": f"serviceAccount:{email}", "id": email}
        case "gcp:kms/getKMSCryptoKeyVersion:getKMSCryptoKeyVersion":  # an asymmetric key's version
            name = f"{args.get('cryptoKey')}/cryptoKeyVersions/{args.get('version') or 1}"
            return {
                "name": name,
                "id": f"//cloudkms.googleapis.com/v1/{name}",
                "cryptoKey": args.get("cryptoKey"),
                "version": args.get("version") or 1,
                "algorithm": "EC_SIGN_ED25519",
                "protectionLevel": "SOFTWARE",
                "state": "ENABLED",
                "publicKeys": [{"algorithm": "EC_SIGN_ED25519", "pem": ED25519_PUBLIC_KEY_PEM}],
            }
        case "gcp:compute/getZones:getZones":
            return {"names": [f"{region}-{z}" for z in "abc"], "id": region}
        case "aws:route53/getZone:getZone":  # the zone the stack names exists, public, serving its domain
            zone_id = str(args.get("zoneId"))
            return {
                "zoneId": zone_id,
                "id": zone_id,
                "arn": f"arn:aws:route53:::hostedzone/{zone_id}",
                "name": domain,
                "privateZone": False,
                "nameServers": [
                    f"ns-{n}.awsdns-{n:02d}.{tld}" for n, tld in ((1, "org"), (2, "co.uk"), (3, "com"), (4, "net"))
                ],
                "primaryNameServer": "ns-1.awsdns-01.org",
                "resourceRecordSetCount": 2,
                "callerReference": "existing",
                "comment": "",
                "tags": {},
            }
        case "gcp:dns/getManagedZone:getManagedZone":
            project = args.get("project") or "meridian"
            return {
                "name": args.get("name"),
                "project": project,
                "id": f"projects/{project}/managedZones/{args.get('name')}",
                "managedZoneId": str(int(short_hash(str(args.get("name")))[:8], 16)),
                "dnsName": f"{domain}.",
                "visibility": "public",
                "nameServers": [f"ns-cloud-a{n}.googledomains.com." for n in (1, 2, 3, 4)],
                "description": "",
            }
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
            out.setdefault("Condition", {}).setdefault(condition["test"], {})[condition["variable"]] = condition[
                "values"
            ]
        statements.append(out)
    return {"Version": "2012-10-17", "Statement": statements}


# SubjectPublicKeyInfo of an Ed25519 key (RFC 8410): this DER prefix, then the 32-byte key.
_ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_BASE_Y = 4 * pow(5, _P - 2, _P) % _P
_BASE_X = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)


def _add(p: _Point, q: _Point) -> _Point:
    a, b = (p[1] - p[0]) * (q[1] - q[0]) % _P, (p[1] + p[0]) * (q[1] + q[0]) % _P
    c, d = 2 * p[3] * q[3] * _D % _P, 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def ed25519_public_key(seed: bytes) -> bytes:
    """The public key of a 32-byte Ed25519 private key (RFC 8032, 5.1.5), so the mocks hand out
    keys that verify like KMS's; the workloads' environment has `cryptography`, this one not."""
    digest = hashlib.sha512(seed).digest()
    scalar = (int.from_bytes(digest[:32], "little") & ((1 << 254) - 8)) | (1 << 254)
    point: _Point = (_BASE_X, _BASE_Y, 1, _BASE_X * _BASE_Y % _P)
    result: _Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point, scalar = _add(point, point), scalar >> 1
    z = pow(result[2], _P - 2, _P)
    x, y = result[0] * z % _P, result[1] * z % _P
    return (y | (x & 1) << 255).to_bytes(32, "little")
