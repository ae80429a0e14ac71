"""The edge server image: the region's int8 model on CPU, escalating to the region (see workloads/serving/README.md)."""
