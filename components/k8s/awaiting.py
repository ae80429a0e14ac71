"""What `pulumi up` waits for on the objects whose readiness the model pipeline decides.

By default the Kubernetes provider holds `pulumi up` until a Deployment's pods are ready and a
Service has ready endpoints (and, for a LoadBalancer, an address), failing after 10 minutes. On a
first `pulumi up` three apps cannot be ready yet, by design: a SuperNode waits for its region's
data (`meridian data push`, which needs the bucket this very `up` creates), and inference and
edge servers wait for their region's first localized model (hours of training later). So:
- their Deployments wait only until the controller has taken the spec (`Progressing`), and
- their LoadBalancer Services wait only for the address the DNS records are built from (a
  ClusterIP Service behind a GKE Gateway only for its cluster IP),
and the README's runbook says how to watch them become ready. Everything else (the SuperLink,
Jobs, the address of its load balancer) keeps the provider's full await.

Annotations from pulumi-kubernetes' provider/pkg/metadata/overrides.go (`pulumi.com/waitFor`,
JSONPath or `condition=` forms; it takes precedence over the built-in await logic), read at the
provider's source on 2026-11-30; pinned provider 4.34.2.
"""

from __future__ import annotations

WAIT_FOR = "pulumi.com/waitFor"

# A Deployment whose pods wait on the pipeline: the rollout has started, nothing more.
ROLLOUT_STARTED = {WAIT_FOR: "condition=Progressing"}
# A LoadBalancer Service whose pods wait on the pipeline: it has its address (any value there).
ADDRESS_ASSIGNED = {WAIT_FOR: "jsonpath={.status.loadBalancer.ingress}"}
# A ClusterIP Service whose pods wait on the pipeline (a GCP region's, behind its Gateway).
CLUSTER_IP_ASSIGNED = {WAIT_FOR: "jsonpath={.spec.clusterIP}"}
