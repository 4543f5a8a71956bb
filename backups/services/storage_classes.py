"""The storage classes each provider offers through its S3 API, by the names S3 uses.

One table, read by the tiering fix (lifecycle transitions) and by the policy targets (a
policy's upload class). Where a provider's S3 API takes other names, or nobody here has
confirmed what it accepts, only STANDARD is listed: writing a class a provider lacks fails
every upload, which is worse than not tiering.

- AWS: every class (STANDARD_IA, GLACIER_IR, GLACIER flexible retrieval, DEEP_ARCHIVE).
- GCS (XML interoperability API): its classes are NEARLINE, COLDLINE and ARCHIVE, named as such,
  and its lifecycle rules are set through its own API, not S3's: STANDARD only here.
- Azure (S3 gateways), Backblaze B2, Wasabi: one class behind the S3 API.
- MinIO: STANDARD and REDUCED_REDUNDANCY (an erasure-coding setting, not a tier); its
  transitions go to remote tiers named by the operator, not to S3's classes.
- Ceph RGW, other S3-compatible services: classes are whatever the operator configured
  (placement targets); unknown here.
"""

from __future__ import annotations

from backups.models import StorageClass
from clients.models import Provider

_ALL = frozenset(StorageClass.values)
_STANDARD_ONLY = frozenset({StorageClass.STANDARD.value})

PROVIDER_CLASSES: dict[str, frozenset[str]] = {
    Provider.AWS: _ALL,
    Provider.GCS: _STANDARD_ONLY,
    Provider.AZURE: _STANDARD_ONLY,
    Provider.BACKBLAZE: _STANDARD_ONLY,
    Provider.WASABI: _STANDARD_ONLY,
    Provider.MINIO: _STANDARD_ONLY,
    Provider.CEPH: _STANDARD_ONLY,
    Provider.OTHER: _STANDARD_ONLY,
    Provider.FILESYSTEM: _STANDARD_ONLY,
}

# Lifecycle transitions, warmest first: infrequent access, then the archive class that still
# reads at once. A rule covers every object under the prefix (keys, indexes and manifests
# included, which every backup reads), so it never moves anything to a class that needs a
# retrieval; only a policy's own upload class puts file content there.
INFREQUENT_ACCESS_CLASS = StorageClass.STANDARD_IA.value
INSTANT_ARCHIVE_CLASS = StorageClass.GLACIER_IR.value


def provider_classes(provider: str) -> frozenset[str]:
    """The classes a provider offers (STANDARD only for one this table does not know)."""
    return PROVIDER_CLASSES.get(provider, _STANDARD_ONLY)


def provider_has_class(provider: str, storage_class: str) -> bool:
    """Whether objects can be written to the provider in `storage_class` (S3's names)."""
    return storage_class in provider_classes(provider)
