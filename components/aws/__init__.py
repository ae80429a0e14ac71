"""AWS building blocks of a Meridian region: one concept per module, composed by region.py."""
