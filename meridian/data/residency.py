"""Whether a bucket, where its cloud says it actually is, lies in its region's residency zone:
checked before the first byte of a region's data is written.

A bucket's location is mapped to a zone with components/catalog.py (the regions and their
zones). GCS buckets may also be dual- or multi-region; only those wholly inside one zone are
listed here (https://cloud.google.com/storage/docs/locations, checked 2026-11). A location
this file cannot place is refused: an unknown place is not known to be in the zone.
"""

from __future__ import annotations

from components.catalog import AWS_REGIONS, GCP_REGIONS, Cloud, Residency
from meridian.data.bucket import Bucket
from meridian.data.errors import DataRefused
from meridian.data.target import DataTarget

GCS_MULTI_REGIONS: dict[str, Residency] = {
    "us": Residency.US,
    "eu": Residency.EU,  # EU member states only
    "asia": Residency.APAC,
    "nam4": Residency.US,  # Iowa + South Carolina
    "eur4": Residency.EU,  # Finland + Netherlands
    "asia1": Residency.APAC,  # Tokyo + Osaka
}


def zone_of(cloud: Cloud, location: str) -> Residency | None:
    """The residency zone of a bucket location of `cloud`, or None when it cannot be placed."""
    if cloud is Cloud.AWS:
        return AWS_REGIONS.get(location)
    if cloud is Cloud.GCP:
        name = location.lower()
        return GCP_REGIONS.get(name) or GCS_MULTI_REGIONS.get(name)
    return None


def check_residency(target: DataTarget, bucket: Bucket) -> str:
    """The bucket's location, once it is known to lie in the target region's zone; else DataRefused
    naming the region, its zone, the bucket and where the bucket is."""
    location = bucket.location()
    zone = zone_of(target.cloud, location)
    if zone is target.residency:
        return location
    where = f"in zone {zone}" if zone is not None else "in no residency zone components/catalog.py knows"
    raise DataRefused(
        f"region {target.region} of {target.stack_source} keeps its data in zone {target.residency}, but its "
        f"bucket {bucket.url(bucket.name)} is in {location} ({where}): nothing written"
    )
