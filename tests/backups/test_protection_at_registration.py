"""A dataset's protection (its policy, data key and schedules) is made once, when the dataset is
registered; everything after reads it, and a dataset without one is an error, never repaired on
the way (migration 0008 made the rows of datasets registered before)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from backups.models import BackupSchedule, DatasetProtection, DefaultFor
from backups.services import (
    ProtectionMissing,
    backup_run_request,
    policy_update,
    protection_get,
)
from clients import signals
from clients.models import Dataset, LifecycleState
from tests.backups.conftest import Agency

MIGRATION = importlib.import_module("backups.migrations.0008_protection_for_every_dataset")


def test_registration_makes_the_protection_once(agency: Agency) -> None:
    target = agency.local_location("Backup disk")
    policy_update(actor=agency.actor, policy=agency.policy(DefaultFor.DAILY), targets=[target])
    dataset = agency.dataset("Survey answers")
    protection = DatasetProtection.objects.get(dataset=dataset)
    assert protection.policy == agency.policy(DefaultFor.DAILY)
    assert protection.wrapped_key
    assert list(BackupSchedule.objects.filter(dataset=dataset).values_list("location", flat=True))
    assert protection_get(dataset) == protection
    # The signal sent again keeps the first row and its key.
    signals.dataset_registered.send(sender=Dataset, dataset=dataset, actor=agency.actor)
    assert DatasetProtection.objects.filter(dataset=dataset).count() == 1
    assert bytes(DatasetProtection.objects.get(dataset=dataset).wrapped_key) == bytes(
        protection.wrapped_key
    )


def test_a_dataset_without_protection_is_an_error_and_none_is_made(agency: Agency) -> None:
    dataset = agency.dataset("Made some other way")
    DatasetProtection.objects.filter(dataset=dataset).delete()
    with pytest.raises(ProtectionMissing, match="no backup protection"):
        protection_get(dataset)
    with pytest.raises(ProtectionMissing):
        backup_run_request(actor=agency.actor, dataset=dataset, enqueue=False)
    assert not DatasetProtection.objects.filter(dataset=dataset).exists()


def test_the_migration_protects_the_datasets_that_have_none(agency: Agency) -> None:
    target = agency.local_location("Backup disk")
    policy_update(actor=agency.actor, policy=agency.policy(DefaultFor.DAILY), targets=[target])
    kept = agency.dataset("Protected already")
    kept_key = bytes(DatasetProtection.objects.get(dataset=kept).wrapped_key)
    older = agency.dataset("Registered before")
    code = agency.dataset("Older code", kind="code_repository")
    gone = agency.dataset("Deleted long ago")
    Dataset.objects.filter(pk=gone.pk).update(lifecycle_state=LifecycleState.DELETED)
    DatasetProtection.objects.filter(dataset__in=[older, code, gone]).delete()
    BackupSchedule.objects.filter(dataset__in=[older, code, gone]).delete()

    MIGRATION.protect_every_dataset(apps, None)

    assert bytes(DatasetProtection.objects.get(dataset=kept).wrapped_key) == kept_key
    assert DatasetProtection.objects.get(dataset=older).policy == agency.policy(DefaultFor.DAILY)
    assert DatasetProtection.objects.get(dataset=older).wrapped_key
    assert set(BackupSchedule.objects.filter(dataset=older).values_list("location", flat=True)) == {
        target.pk
    }
    assert DatasetProtection.objects.get(dataset=code).policy == agency.policy(
        DefaultFor.CONTINUOUS
    )
    # A deleted dataset's key was destroyed on purpose: no new one.
    assert not DatasetProtection.objects.filter(dataset=gone).exists()
