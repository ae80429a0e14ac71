"""`meridian data`: a region's data into that region's bucket, checked against its residency zone."""
