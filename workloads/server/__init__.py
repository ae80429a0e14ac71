"""The regional inference server image: the full model, GPU when present (see README.md)."""
