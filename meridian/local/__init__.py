"""The local stack: the fleet that `pulumi up` deploys, run as processes on one machine."""
