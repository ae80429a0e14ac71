"""What the regional server and the edge server share: the Open Inference Protocol (KServe V2)
app, request validation, micro-batching, versions and hot reload, metrics (see README.md here)."""
