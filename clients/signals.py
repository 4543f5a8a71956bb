"""Hooks higher apps (backups, lifecycle) subscribe to; clients never imports them.

Contracts (all sent inside the service's transaction, so a receiver's rows commit or roll back
with the change; a receiver with outside effects uses `delay_on_commit`):
- organization_created(sender=Organization, organization)
- dataset_registered(sender=Dataset, dataset, actor)
- dataset_state_changed(sender=Dataset, dataset, previous_state, actor)
- grant_changed(sender=AccessGrant, grant, action: "grant" | "revoke" | "expire", actor)
- token_created(sender=ApiToken, token, user) — a personal API token was issued to `user`
- dataset_path_checking(sender=Dataset, location, path) — a dataset is about to get this primary
  path on this location; a receiver that keeps data of its own there (backup repositories)
  refuses by raising kernel.exceptions.ValidationFailed with a message on "path"
"""

from django.dispatch import Signal

organization_created = Signal()
dataset_registered = Signal()
dataset_state_changed = Signal()
grant_changed = Signal()
token_created = Signal()
dataset_path_checking = Signal()
