"""The composition root: settings, URLs, the Celery app and beat, WSGI, sign-in and the
management commands that wire the apps together. It may import every app; nothing imports it
back except Django (by settings module name) and the Celery worker."""

from agencyops.celery import app as celery_app

__all__ = ["celery_app"]
