"""Hooks the backup app sends; higher apps (lifecycle) subscribe, backups never imports them.

Contract (sent inside the service's transaction, so nothing is recorded for a rolled-back
request; receivers with outside effects use `transaction.on_commit`):
- data_accessed(sender=RestoreRun, organization, actor: Actor | None, action, dataset,
  snapshot, details: dict of JSON values, origin: kernel.http.RequestOrigin)
  — client data is being read through the system. `action` is "restore", "restore_drill" or
  "download"; `actor` is None for a system-started drill.
"""

from django.dispatch import Signal

data_accessed = Signal()
