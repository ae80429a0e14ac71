"""Meridian's policy rules, one module per service; `POLICIES` is the whole pack, in order.

What the rules share sits beside them, one job a module: `decorators` (a check becomes a rule),
`props` (reading props), `stack` (finding resources and references), `config_schema`, `pricing`,
and for Kubernetes objects `kubernetes.pod_specs` and `kubernetes.metadata`.
"""

from __future__ import annotations

from pulumi_policy import Policy

from .aws import cloudfront, ec2, eks, iam, kms, s3
from .gcp import gcs, gke, lb
from .gcp import kms as gcp_kms
from .kubernetes import autoscaling, availability, exposure, images, namespaces, pods
from .meridian import cost, flower, gpus, metrics, residency, tags

POLICIES: list[Policy] = [
    *eks.POLICIES,
    *s3.POLICIES,
    *kms.POLICIES,
    *cloudfront.POLICIES,
    *ec2.POLICIES,
    *iam.POLICIES,
    *gke.POLICIES,
    *gcs.POLICIES,
    *gcp_kms.POLICIES,
    *lb.POLICIES,
    *pods.POLICIES,
    *images.POLICIES,
    *availability.POLICIES,
    *autoscaling.POLICIES,
    *namespaces.POLICIES,
    *exposure.POLICIES,
    *residency.POLICIES,
    *gpus.POLICIES,
    *cost.POLICIES,
    *flower.POLICIES,
    *metrics.POLICIES,
    *tags.POLICIES,
]
