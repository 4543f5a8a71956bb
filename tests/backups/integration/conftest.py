"""The `cluster` fixture: real Celery processes sharing this test's database and broker.

The test database must be visible to another process, so these tests commit for real
(`django_db(transaction=True)`): a worker could never see rows inside the test's transaction.
On SQLite the test database is a file (agencyops/settings.py), on PostgreSQL a real database;
either way its name reaches the workers as DATABASE_URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.backups.integration.support import Cluster


@pytest.fixture
def cluster(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[Cluster]:
    # Depends on transactional_db, so the workers are stopped before the database is flushed.
    started = Cluster(tmp_path / "celery", connection.settings_dict, settings.AGENCYOPS_MASTER_KEY)
    try:
        yield started
    finally:
        started.stop()
