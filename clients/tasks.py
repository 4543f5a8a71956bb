"""Thin Celery wrappers over inventory services."""

from __future__ import annotations

from celery import shared_task

from clients import services


@shared_task(acks_late=True, soft_time_limit=50, time_limit=55)
def grants_expire_task() -> int:
    return len(services.grants_expire())
