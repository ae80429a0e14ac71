"""`meridian plan`: where the fleet's nodes go, chosen from demand, latency, residency and cost,
written as a stack (see README.md, "Planning the layout")."""
