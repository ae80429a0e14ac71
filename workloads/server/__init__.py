"""The regional inference server image: the full model, GPU when present (see workloads/serving/README.md)."""
