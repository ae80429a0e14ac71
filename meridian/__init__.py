"""Meridian's operator CLI: offline preview, policy check, diff, cost, and the local stack."""
