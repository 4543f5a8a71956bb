"""AgencyOps project package: settings, URLs, Celery app and tenancy plumbing."""

from agencyops.celery import app as celery_app

__all__ = ["celery_app"]
