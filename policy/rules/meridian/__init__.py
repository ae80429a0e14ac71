"""meridian rules."""
