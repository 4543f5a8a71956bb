"""The old path of `lifecycle.services.access.outbox`, kept only because
`lifecycle/services/deletion/decisions.py` (another branch's file in this refactor) still
imports it: once that import names `lifecycle.services.access.outbox`, delete this module."""

from lifecycle.services.access.outbox import access_event_record

__all__ = ["access_event_record"]
