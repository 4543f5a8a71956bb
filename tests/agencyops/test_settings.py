"""Settings: embedded defaults, refusal to start without production secrets, deploy checks."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from agencyops import celery as celery_module

ROOT = Path(__file__).resolve().parents[2]


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "SECRET_KEY",
            "AGENCYOPS_MASTER_KEY",
            "AGENCYOPS_MASTER_KEY_FILE",
            "DEBUG",
            "ALLOWED_HOSTS",
        }
    }
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_without_secret_key_refuses_to_start(tmp_path: Path) -> None:
    result = _run({"DEBUG": "false", "AGENCYOPS_VAR_DIR": str(tmp_path)}, "check")
    assert result.returncode != 0
    assert "refuses to start with DEBUG off" in result.stderr
    assert "SECRET_KEY" in result.stderr
    assert "AGENCYOPS_MASTER_KEY" in result.stderr


def test_production_without_master_key_refuses_to_start(tmp_path: Path) -> None:
    result = _run(
        {
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "AGENCYOPS_VAR_DIR": str(tmp_path),
        },
        "check",
    )
    assert result.returncode != 0
    assert "AGENCYOPS_MASTER_KEY" in result.stderr
    assert "SECRET_KEY and" not in result.stderr


def test_check_deploy_is_clean_in_production(tmp_path: Path) -> None:
    env = {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AGENCYOPS_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "ALLOWED_HOSTS": "agencyops.example.com",
        "AGENCYOPS_VAR_DIR": str(tmp_path),
    }
    result = _run(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_invalid_boolean_is_named(tmp_path: Path) -> None:
    result = _run({"DEBUG": "maybe", "AGENCYOPS_VAR_DIR": str(tmp_path)}, "check")
    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr


def test_embedded_defaults_generate_master_key_once(tmp_path: Path) -> None:
    env = {"AGENCYOPS_VAR_DIR": str(tmp_path), "DATABASE_URL": ""}
    code = "from kernel.crypto import master_key; print(master_key().hex())"
    first = _run(env, "shell", "-c", code)
    second = _run(env, "shell", "-c", code)
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    first_key = first.stdout.strip().splitlines()[-1]
    assert first_key == second.stdout.strip().splitlines()[-1]
    assert len(bytes.fromhex(first_key)) == 32


def test_sealed_values_are_bound_to_purpose() -> None:
    from kernel.crypto import SealError, seal, unseal

    sealed = seal(b"secret", purpose="a")
    assert unseal(sealed, purpose="a") == b"secret"
    with pytest.raises(SealError):
        unseal(sealed, purpose="b")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealError):
        unseal(tampered, purpose="a")


def test_celery_is_configured_for_long_redeliverable_jobs() -> None:
    conf = celery_module.app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.broker_url == settings.CELERY_BROKER_URL
