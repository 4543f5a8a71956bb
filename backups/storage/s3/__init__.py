"""`ObjectStore` over any S3-compatible service: the store (`store`), the guarded sockets of its
client (`egress`) and the response bodies it hands out (`bodies`). Public names here."""

from backups.storage.s3.egress import GuardedConnect
from backups.storage.s3.store import S3ObjectStore

__all__ = ["GuardedConnect", "S3ObjectStore"]
