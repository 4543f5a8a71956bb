"""Reliability tests reuse the backup fixtures (an agency, moto's S3 server over HTTP)."""

from tests.backups.conftest import agency, new_agency, s3_endpoint, s3_endpoint_with_auth

__all__ = ["agency", "new_agency", "s3_endpoint", "s3_endpoint_with_auth"]
