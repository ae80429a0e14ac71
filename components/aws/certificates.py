"""An AWS region's public certificate: one ACM certificate, requested in the region itself (ACM
certificates are regional; a load balancer takes them from its own region only,
https://docs.aws.amazon.com/acm/latest/userguide/acm-regions.html), for every name the
region's load balancers answer: `<region>.<domain>`, the routed `inference.<domain>` and
`*.<region>.<domain>` for its edge sites.

ACM proves each name by a CNAME in the stack's zone, whichever cloud serves it. The record
for a name is the same for every certificate of the account, in any region
(hashicorp/terraform-provider-aws#13653), and a wildcard shares its base name's: so a record
is written once per name in the stack. A region's own names are its own; the routed name's
record comes with the first AWS region's certificate (the home's, at an AWS home) and later
regions wait on it (`proven`). `aws.acm.CertificateValidation` resolves once ACM has issued
the certificate, so a listener given its ARN never presents a pending one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.stack_zone import StackZone

VALIDATION_TTL = 300  # ACM re-reads the records at every renewal; they never change


def proven_name(name: str) -> str:
    """The name whose record proves `name`: a wildcard is proven by its base name's."""
    return name.removeprefix("*.")


@dataclass(frozen=True)
class RegionCertificateArgs:
    names: Sequence[str]  # the first is the certificate's subject, the others its alternative names
    zone: StackZone  # where the validation records go
    # Names whose validation record another certificate of the stack wrote already: its fqdn
    proven: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)


class RegionCertificate(pulumi.ComponentResource):
    """Children take the region's provider from `opts` (the certificate and its validation);
    the records go through the zone's."""

    arn: pulumi.Output[str]  # resolves once issued
    # Name -> the fqdn of the validation record this certificate wrote for it
    records: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: RegionCertificateArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:aws:RegionCertificate", name, None, opts)
        subject, *alternatives = args.names
        certificate = aws.acm.Certificate(
            f"{name}-cert",
            domain_name=subject,
            subject_alternative_names=alternatives,
            validation_method="DNS",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.records = {}
        proofs = list(dict.fromkeys(proven_name(n) for n in args.names))
        for proven in proofs:
            if proven in args.proven:
                continue
            option = certificate.domain_validation_options.apply(
                lambda options, proven=proven: next(o for o in options if proven_name(o.domain_name or "") == proven)
            )
            record = args.zone.record(
                f"{name}-proof-{proven.split('.')[0]}",
                option.apply(lambda o: o.resource_record_name or ""),
                option.apply(lambda o: o.resource_record_type or "CNAME"),
                [option.apply(lambda o: o.resource_record_value or "")],
                self,
                ttl=VALIDATION_TTL,
            )
            # ACM names the record with its trailing dot; the validation matches names without it
            self.records[proven] = record.name.apply(lambda n: n.rstrip("."))
        validation = aws.acm.CertificateValidation(
            f"{name}-validation",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[{**args.proven, **self.records}[n] for n in proofs],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = validation.certificate_arn
        self.register_outputs({"arn": self.arn, "names": list(args.names)})
