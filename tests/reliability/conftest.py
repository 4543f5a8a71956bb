"""Reliability tests reuse the backup fixtures (an agency, moto's S3 server over HTTP) and the
integration tests' `cluster` of real Celery workers."""

from tests.backups.conftest import agency, new_agency, s3_endpoint, s3_endpoint_with_auth
from tests.backups.integration.conftest import cluster

__all__ = ["agency", "cluster", "new_agency", "s3_endpoint", "s3_endpoint_with_auth"]
