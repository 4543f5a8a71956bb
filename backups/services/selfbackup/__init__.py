"""AgencyOps backs itself up, and rebuilds itself from that backup into a fresh database.

What a self-backup is: one consistent dump of the whole database (PostgreSQL: `pg_dump
--format=custom` from an exported snapshot; SQLite: the online backup API) plus `manifest.json`
(AgencyOps version, applied migrations, database vendor, row counts and the organizations'
signing public keys, all read in the dump's own snapshot), stored with the backup engine in its
own encrypted repository `_agencyops-self/` in each chosen place (`<location prefix>/` of a
storage location, or an operator directory). The dump holds everything else: storage
credentials, dataset keys and signing private keys, all sealed under the master key.

Keys: the repository's data key is derived from the master key (HKDF, "agencyops-self-backup")
and also stored wrapped in the repository's `key` object, so a restore needs ONLY the master key
and access to the target; the database, which holds the location credentials, is what is lost.

Which places: the operator's. `AGENCYOPS_SELF_BACKUP_LOCATIONS` lists storage location ids
(UUIDs) and operator directories (`file:///dir` or `/dir`, refused inside or around any local
root, which is tenant space). Unset, an installation with a single organization backs up to the
targets of its built-in "records" policy (the operator and the agency are one); with several
organizations the dump (every organization's rows and sealed keys) never goes into one of them
by default: the run writes nothing and fails ("set AGENCYOPS_SELF_BACKUP_LOCATIONS"), and
`serve_all` and each Celery worker log a WARNING at start. Each place is written
independently: one failing target never stops the others. A failed storage location opens a
`backup_failed` alert for the organization owning it (incident "self_backup_failed:<location
uuid>"); the next success resolves it. An operator directory and an unset setting belong to no
organization, so they never alert a tenant: the worker logs an ERROR, the task fails and
`backup_self` exits non-zero. Each repository keeps the newest 3, one a day for 14 days and one
a week for 8 weeks (then unreferenced chunks are collected): a destroyed dataset key lives on in
older dumps until they age out of that window.
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
    OperatorDirectory,
    SelfBackupError,
    SelfBackupPlace,
    SelfBackupResult,
    SelfBackupTarget,
    SelfSnapshot,
    operator_directory_check,
    self_backup_data_key,
    self_backup_locations,
    self_backup_setting_problem,
    self_backup_startup_warning,
    self_repository_base,
)
from backups.services.selfbackup.database import COUNTED, READERS, inventory_register, quote_name
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
    "READERS",
    "RETENTION",
    "SELF_REPOSITORY",
    "CountCheck",
    "OperatorDirectory",
    "SelfBackupError",
    "SelfBackupPlace",
    "SelfBackupResult",
    "SelfBackupTarget",
    "SelfSnapshot",
    "database_tables",
    "inventory_register",
    "operator_directory_check",
    "quote_name",
    "self_backup_data_key",
    "self_backup_locations",
    "self_backup_run",
    "self_backup_run_by_ids",
    "self_backup_setting_problem",
    "self_backup_startup_warning",
    "self_repository_base",
    "self_repository_open",
    "self_restore_check",
    "self_restore_load",
    "self_snapshots_list",
]
