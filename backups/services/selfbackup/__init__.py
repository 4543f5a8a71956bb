"""AgencyOps backs itself up, and rebuilds itself from that backup into a fresh database.

What a self-backup is: one consistent dump of the whole database (PostgreSQL: `pg_dump
--format=custom` from an exported snapshot; SQLite: the online backup API) plus `manifest.json`
(AgencyOps version, applied migrations, database vendor, row counts and the organizations'
signing public keys, all read in the dump's own snapshot), stored with the backup engine in its
own encrypted repository `<location prefix>/_agencyops-self/` on each chosen location. The dump
holds everything else: storage credentials, dataset keys and signing private keys, all sealed
under the master key.

Keys: the repository's data key is derived from the master key (HKDF, "agencyops-self-backup")
and also stored wrapped in the repository's `key` object, so a restore needs ONLY the master key
and access to the target; the database, which holds the location credentials, is what is lost.

Which locations: `AGENCYOPS_SELF_BACKUP_LOCATIONS` (location UUIDs), else every target of any
organization's built-in "records" policy. Each location is written independently: one failing
target never stops the others. A failed location opens a `backup_failed` alert for the
organization owning it (incident "self_backup_failed:<location uuid>"); the next success
resolves it. Each repository keeps the newest 3, one a day for 14 days and one a week for 8
weeks (then unreferenced chunks are collected): a destroyed dataset key lives on in older dumps
until they age out of that window.
"""

from backups.services.selfbackup.backup import (
    RETENTION,
    self_backup_run,
    self_backup_run_by_ids,
)
from backups.services.selfbackup.common import (
    DUMP_NAMES,
    FORMAT_VERSION,
    KEY_CONTEXT,
    MANIFEST_KIND,
    MANIFEST_NAME,
    SELF_REPOSITORY,
    CountCheck,
    SelfBackupError,
    SelfBackupResult,
    SelfBackupTarget,
    SelfSnapshot,
    self_backup_data_key,
    self_backup_locations,
    self_repository_base,
)
from backups.services.selfbackup.database import COUNTED
from backups.services.selfbackup.restore import (
    database_tables,
    self_repository_open,
    self_restore_check,
    self_restore_load,
    self_snapshots_list,
)

__all__ = [
    "COUNTED",
    "DUMP_NAMES",
    "FORMAT_VERSION",
    "KEY_CONTEXT",
    "MANIFEST_KIND",
    "MANIFEST_NAME",
    "RETENTION",
    "SELF_REPOSITORY",
    "CountCheck",
    "SelfBackupError",
    "SelfBackupResult",
    "SelfBackupTarget",
    "SelfSnapshot",
    "database_tables",
    "self_backup_data_key",
    "self_backup_locations",
    "self_backup_run",
    "self_backup_run_by_ids",
    "self_repository_base",
    "self_repository_open",
    "self_restore_check",
    "self_restore_load",
    "self_snapshots_list",
]
