"""Kubernetes rules, and what they and the Flower rules share: pod_specs, metadata."""
