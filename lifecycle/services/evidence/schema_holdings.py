"""Evidence schema sections about the data: the organization and client, engagements, the
inventory, where every copy is stored and how, the backup policies, protection (3-2-1 and
RPO per target), restore tests and encryption."""

from __future__ import annotations

from lifecycle.services.evidence.schema_builders import (
    CLASSIFICATIONS,
    DATASET_KINDS,
    LIFECYCLE_STATES,
    RUN_STATES,
    _arr,
    _bool,
    _day,
    _enum,
    _int,
    _obj,
    _s,
    _secs,
    _strings,
    _t,
    _uuid,
    _when,
)

ORGANIZATION = _obj(
    "The agency holding the data: the processor.",
    {
        "id": _uuid("The organization's public id."),
        "name": _s("The organization's name."),
    },
)

CLIENT = _obj(
    "The client this evidence is about: the controller of the data.",
    {
        "id": _uuid("The client's public id (the one in the request URL)."),
        "name": _s("The client's name."),
        "slug": _s("The client's short name."),
        "status": _enum("Where the relationship stands.", ["active", "offboarding", "closed"]),
        "contact_name": _s("The client's contact person, as the agency recorded it."),
        "contact_email": _s("The client's contact e-mail."),
        "contract_reference": _s("The master agreement's reference."),
        "dpa_reference": _s("The data processing agreement's reference."),
        "created_at": _when("When the agency registered the client"),
    },
)

ENGAGEMENT = _obj(
    "A piece of contracted work; its end starts the deletion clock.",
    {
        "id": _uuid("The engagement's public id."),
        "name": _s("The engagement's name."),
        "status": _enum("Whether the engagement is running or has ended.", ["active", "ended"]),
        "starts_on": _day("First day of the engagement"),
        "ends_on": _day("Last day of the engagement; null while open-ended", nullable=True),
        "deletion_due_days": _int("Days after the end by which its data must be deleted."),
    },
)

DATASET = _obj(
    "One body of the client's data the agency holds.",
    {
        "id": _uuid("The dataset's public id; other sections refer to datasets by it."),
        "name": _s("The dataset's name."),
        "kind": _enum("What the data is.", DATASET_KINDS),
        "classification": _enum("How sensitive it is.", CLASSIFICATIONS),
        "contains_personal_data": _bool("Whether it holds personal data."),
        "source": _s("Where the data came from."),
        "primary_location": _uuid("The storage location of the primary copy (storage_locations)."),
        "path": _s("Path or key prefix of the primary copy inside that location."),
        "owner": _s("Username responsible for its backups; null if none", nullable=True),
        "engagement": _uuid("The engagement it belongs to; null if none.", nullable=True),
        "lifecycle_state": _enum("Where it is in its life.", LIFECYCLE_STATES),
        "rpo_seconds": _secs(
            "Recovery point objective: most data, in time, the client accepts to lose"
        ),
        "rto_seconds": _secs("Recovery time objective: longest acceptable wait for a restore"),
        "registered_at": _when("When it was registered"),
    },
)

_FINDING = _obj(
    "A protection the location lacks, as the latest audit found.",
    {
        "check": _s("The setting checked (versioning, object_lock, encryption, …)."),
        "severity": _enum("How bad it is.", ["critical", "high", "medium", "low", "info"]),
        "message": _s("What was found, in words."),
    },
)

_POSTURE = _obj(
    "The latest reading of the bucket's protection settings; null for local directories "
    "(not audited) and buckets not audited yet.",
    {
        "audited_at": _when("When the settings were read"),
        "reachable": _bool("Whether the bucket answered."),
        "versioning": _s("Versioning status: Enabled, Suspended or Disabled.", nullable=True),
        "mfa_delete": _s("MFA delete: Enabled or Disabled.", nullable=True),
        "object_lock": _obj(
            "Object lock (write once, read many).",
            {
                "enabled": _bool("Whether object lock is on."),
                "mode": _s(
                    "GOVERNANCE or COMPLIANCE; null if no default retention.", nullable=True
                ),
                "days": _int("Default retention in days.", nullable=True),
                "years": _int("Default retention in years.", nullable=True),
                "policy_retention": _arr(
                    "Retention policies ask of this bucket as a backup target.",
                    _obj(
                        "One policy's retention on this target.",
                        {
                            "policy": _uuid("The policy (policies)."),
                            "mode": _enum("Object Lock mode.", ["GOVERNANCE", "COMPLIANCE"]),
                            "days": _int("Days each object is retained after it is written."),
                        },
                    ),
                ),
            },
        ),
        "replication_rules": _int("Number of replication rules."),
        "lifecycle_rules": _int("Number of lifecycle (tiering and expiry) rules."),
        "encryption": _s("Default server-side encryption algorithm; null if none.", nullable=True),
        "public_access_blocked": _bool(
            "Whether all four public-access-block settings are on; null if unknown.",
            nullable=True,
        ),
        "logging": _bool("Whether server access logging is on.", nullable=True),
        "findings": _arr("What the audit found lacking; empty when nothing.", _FINDING),
    },
    nullable=True,
)

LOCATION = _obj(
    "A place the client's data is stored: a primary location or a backup target.",
    {
        "id": _uuid("The location's public id; other sections refer to locations by it."),
        "name": _s("The location's name."),
        "kind": _enum("An S3-compatible bucket or a local directory.", ["s3", "local"]),
        "provider": _s("The storage provider (aws, gcs, backblaze, minio, filesystem, …)."),
        "region": _s("The provider's region; empty for local directories."),
        "medium": _s(
            "The storage family copies on it share a fate with: the provider for buckets, "
            "'filesystem' for local directories (the M of 3-2-1)."
        ),
        "bucket": _s("The bucket; empty for local directories."),
        "prefix": _s("Key prefix inside the bucket, or the directory."),
        "dedicated_to_client": _bool("Whether only this client's data is stored there."),
        "roles": _arr(
            "How this client uses it.",
            _enum("A role.", ["primary", "backup_target"]),
        ),
        "posture": _POSTURE,
    },
)

POLICY = _obj(
    "A backup policy applied to at least one of the client's datasets.",
    {
        "id": _uuid("The policy's public id."),
        "name": _s("The policy's name."),
        "frequency": _enum(
            "How often it backs up.", ["continuous", "hourly", "daily", "weekly", "monthly"]
        ),
        "time_of_day": _s("UTC start time of daily, weekly and monthly backups (HH:MM)."),
        "retention": _s("What pruning keeps, in words."),
        "keep": _obj(
            "Snapshots kept per bucket of time (-1: all of them).",
            {
                "last": _t("integer", "Most recent snapshots kept."),
                "hourly": _t("integer", "Hours with a snapshot kept."),
                "daily": _t("integer", "Days with a snapshot kept."),
                "weekly": _t("integer", "Weeks with a snapshot kept."),
                "monthly": _t("integer", "Months with a snapshot kept."),
                "yearly": _t("integer", "Years with a snapshot kept."),
                "forever": _bool("Whether no snapshot is ever pruned."),
            },
        ),
        "storage_class": _s("Storage class snapshots are written in."),
        "infrequent_access_after_days": _int(
            "Days before data moves to infrequent access.", nullable=True
        ),
        "archive_after_days": _int("Days before data moves to archive.", nullable=True),
        "drill_every_seconds": _secs(
            "How often each dataset is restored in a drill; null: by hand only", nullable=True
        ),
        "targets": _arr("Backup targets, in order.", _uuid("A location id (storage_locations).")),
        "target_retention": _arr(
            "Object Lock retention the policy asks of its targets (none listed: none asked).",
            _obj(
                "Retention on one target: every object written there is kept this long, "
                "extended while a newer snapshot needs it.",
                {
                    "location": _uuid("The target (storage_locations)."),
                    "mode": _enum("Object Lock mode.", ["GOVERNANCE", "COMPLIANCE"]),
                    "days": _int("Days each object is retained after it is written."),
                },
            ),
        ),
    },
)

_RULE = _obj(
    "One rule of 3-2-1.",
    {
        "name": _enum("The rule.", ["copies", "media", "offsite", "history"]),
        "met": _bool("Whether it holds."),
        "reason": _s("Why it holds, or why not, in words."),
    },
)

_TARGET = _obj(
    "The dataset's latest restorable snapshot on one backup target.",
    {
        "location": _uuid("The target (storage_locations)."),
        "last_snapshot_at": _when("When its newest complete snapshot was taken", nullable=True),
        "age_seconds": _secs("How old that snapshot was when generated_at", nullable=True),
        "fresh": _bool("Whether it is at most the RPO old."),
        "restorable_snapshots": _int("Complete snapshots kept there."),
    },
)

PROTECTION = _obj(
    "How one dataset is backed up, and whether 3-2-1 holds — computed from the snapshots "
    "really stored, not declared.",
    {
        "dataset": _uuid("The dataset (inventory)."),
        "policy": _uuid("Its backup policy (backup_policies); null if none.", nullable=True),
        "pruning_suspended": _bool("Whether pruning is suspended (a legal hold covers it)."),
        "three_two_one": _obj(
            "3 copies, on 2 media, 1 offsite, plus version history.",
            {
                "met": _bool("Whether every rule holds."),
                "retired": _bool("Deleted or pending deletion: reported, never failed."),
                "copies": _int(
                    "Copies counted: the primary and each target with a fresh snapshot."
                ),
                "media": _int("Distinct storage families among the counted copies."),
                "offsite": _bool("Whether a counted copy is with another provider or region."),
                "history": _bool("Whether versions or at least two snapshots are kept."),
                "reasons": _strings("Why it fails; empty when met.", "A failing rule's reason."),
                "rules": _arr("Each rule with its reason.", _RULE),
            },
        ),
        "rpo_seconds": _secs("The dataset's RPO"),
        "last_good_at": _when("Newest restorable snapshot on any target", nullable=True),
        "rpo_met": _bool("Whether that snapshot is at most the RPO old."),
        "targets": _arr("The policy's targets with their latest snapshot.", _TARGET),
    },
)

_DRILL = _obj(
    "The last finished restore drill: a full restore into scratch space, every file checked.",
    {
        "id": _uuid("The drill's public id."),
        "status": _enum("How it ended.", RUN_STATES),
        "started_at": _when("When the restore started", nullable=True),
        "finished_at": _when("When the restored copy was verified", nullable=True),
        "snapshot_taken_at": _when("When the restored snapshot was taken"),
        "measured_seconds": _secs(
            "Time to a verified copy, without any archive retrieval", nullable=True
        ),
        "retrieval_seconds": _secs(
            "Time spent waiting for archived content to be retrieved first (null: none was "
            "needed); the RTO is compared with its sum with measured_seconds",
            nullable=True,
        ),
        "rto_seconds": _secs("The RTO it was measured against", nullable=True),
        "rto_met": _bool("Whether it finished within the RTO.", nullable=True),
        "recovery_point_age_seconds": _secs("How old the restored snapshot was", nullable=True),
        "rpo_met": _bool("Whether that age was within the RPO.", nullable=True),
        "files_verified": _int("Files re-read and matched against the manifest (sha256)."),
        "issues": _strings("What went wrong; empty when nothing.", "An issue."),
        "reviewed_by": _s("Who reviewed the result; null if nobody yet.", nullable=True),
        "reviewed_at": _when("When it was reviewed", nullable=True),
    },
    nullable=True,
)

_RESTORE = _obj(
    "The last restore someone asked for (not a drill).",
    {
        "id": _uuid("The restore's public id."),
        "status": _enum("Where it stands.", RUN_STATES),
        "requested_by": _s("Who asked for it; null for the system.", nullable=True),
        "requested_at": _when("When it was asked for"),
        "finished_at": _when("When it finished", nullable=True),
        "duration_seconds": _secs("How long it ran", nullable=True),
        "rto_met": _bool(
            "Whether it succeeded within the dataset's RTO; null while unfinished.", nullable=True
        ),
        "files": _int("Files restored."),
        "bytes": _int("Bytes restored."),
    },
    nullable=True,
)

RESTORE_TESTS = _obj(
    "Restore drills and restores of one dataset, measured against its RTO.",
    {
        "dataset": _uuid("The dataset (inventory)."),
        "rto_seconds": _secs("The dataset's RTO"),
        "drill_within_period": _bool(
            "Whether a drill succeeded within the drill period (the policy's, else 91 days)."
        ),
        "next_drill_due_at": _when(
            "When the next scheduled drill is due; null: drills by hand only", nullable=True
        ),
        "last_drill": _DRILL,
        "last_restore": _RESTORE,
    },
)

_KEY = _obj(
    "The dataset's own data key.",
    {
        "dataset": _uuid("The dataset (inventory)."),
        "state": _enum(
            "active: the key exists, wrapped; destroyed: crypto-shredded, every copy unreadable; "
            "none: nothing backed up yet.",
            ["active", "destroyed", "none"],
        ),
        "key_id": _s(
            "First 16 hex digits of the sha256 of the wrapped key: differs per dataset; null "
            "once destroyed or before the first backup.",
            nullable=True,
        ),
        "destroyed_at": _when("When the key was destroyed", nullable=True),
    },
)

ENCRYPTION = _obj(
    "How backups are encrypted and who holds the keys.",
    {
        "algorithm": _s("Cipher of chunks and manifests."),
        "chunk_addressing": _s("How chunks are named without leaking content across datasets."),
        "key_wrapping": _s("How each dataset key is protected at rest."),
        "key_custody": _obj(
            "Who holds the key that unlocks the dataset keys.",
            {
                "holder": _s("The organization holding the master key."),
                "master_key_source": _enum(
                    "Where the master key is configured.", ["environment", "file"]
                ),
                "description": _s("Key custody, in words."),
            },
        ),
        "keys": _arr("One entry per dataset: one key each.", _KEY),
    },
)
