"""gcp rules."""
