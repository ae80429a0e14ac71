"""The federated trainer image: the Flower ServerApp and ClientApp, update compression and
validation, certificates, the TLS gateway, and the local launcher (see README.md here)."""
