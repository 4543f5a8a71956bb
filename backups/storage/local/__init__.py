"""`ObjectStore` over a local directory (`store`), reaching every key without following a
symbolic link (`walk`). Public names here."""

from backups.storage.local.store import LocalObjectStore
from backups.storage.local.walk import TMP_PREFIX

__all__ = ["TMP_PREFIX", "LocalObjectStore"]
