"""Verification fails closed: a certificate or evidence file re-signed with a key of the
forger's own (document, sha256, signature and the key it names all replaced consistently) is
refused under the organization's published key; neither command says anything but "pin a key"
(exit 2) without one; `--key-url` fetches the published key from a live server with a token
read from a file, standard input or AGENCYOPS_TOKEN, and a fetch that fails fails closed; and
the certificate the API serves, saved as it is, verifies byte for byte."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # ships no type hints
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from clients import services as clients_services
from kernel.tenancy import Actor
from lifecycle import services
from lifecycle.management.signed_file import TOKEN_ENV
from lifecycle.services.signing import key_fingerprint
from tests.agencyops.conftest import w
from tests.conftest import World

__all__ = ["w"]  # the fixture

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("verify_certificate", "verify_evidence")


def api_as(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _forger() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    return key, _b64(key.public_key().public_bytes_raw())


def forge_certificate(raw: bytes, *, name_the_forgers_key: bool = True) -> tuple[bytes, str]:
    """The certificate with another client's name, its sha256 recomputed and signed by a fresh
    key — the file names that key, or (`name_the_forgers_key=False`) still the published one.
    Returns the file and the forger's public key."""
    envelope = json.loads(raw)
    envelope["certificate"]["client"]["name"] = "Someone else"
    canonical = services.canonical_json(envelope["certificate"])
    key, public = _forger()
    envelope["sha256"] = hashlib.sha256(canonical).hexdigest()
    envelope["signature"] = _b64(key.sign(canonical))
    if name_the_forgers_key:
        envelope["public_key"] = public
    return services.canonical_json(envelope) + b"\n", public


def forge_evidence(raw: bytes) -> tuple[bytes, str]:
    """The evidence with another client's name, signed by a fresh key that the signature block
    names, with that key's fingerprint: self-consistent."""
    envelope = json.loads(raw)
    envelope["document"]["client"]["name"] = "Someone else"
    key, public = _forger()
    envelope["signature"] = {
        "algorithm": "Ed25519",
        "public_key": public,
        "key_id": key_fingerprint(public),
        "value": _b64(key.sign(services.canonical_json(envelope["document"]))),
    }
    return services.evidence_file_bytes(envelope), public


@pytest.fixture
def files(w: World, tmp_path: Path) -> dict[str, Path]:
    """Genuine and forged certificate and evidence files of client B, saved."""
    certificate = services.certificate_file_bytes(w.certificate_b)
    evidence = services.evidence_read(actor=Actor.system(w.org), client=w.client_b).raw
    found = {
        "certificate": certificate,
        "forged_certificate": forge_certificate(certificate)[0],
        "evidence": evidence,
        "forged_evidence": forge_evidence(evidence)[0],
    }
    for name, raw in found.items():
        (tmp_path / f"{name}.json").write_bytes(raw)
    return {name: tmp_path / f"{name}.json" for name in found}


def run(command: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- the functions: the pinned key, never the one in the file ---


def test_a_certificate_resigned_with_a_random_key_fails_under_the_published_key(
    w: World,
) -> None:
    raw = services.certificate_file_bytes(w.certificate_b)
    published = services.signing_key_ensure(w.org).public_key
    forged, forgers_key = forge_certificate(raw)
    # The forgery is self-consistent: under the key it names, it verifies. That key is what the
    # file offers; a verifier that took it from there would have said OK.
    assert services.certificate_verify(forged, public_key=forgers_key)[0]
    assert services.certificate_verify(forged, public_key=published) == (
        False,
        "signed by another key than the published one",
    )
    # Naming the published key does not help: the signature is checked under the pinned key.
    still_named, _ = forge_certificate(raw, name_the_forgers_key=False)
    assert services.certificate_verify(still_named, public_key=published) == (
        False,
        "the signature does not verify",
    )
    assert services.certificate_verify(raw, public_key=published) == (
        True,
        "the certificate is intact and its signature verifies",
    )
    # An empty pin is no pin; and the pin is a required argument (no default to fall back on).
    assert not services.certificate_verify(raw, public_key="  ")[0]
    with pytest.raises(TypeError):
        services.certificate_verify(raw)  # type: ignore[call-arg]  # the point: it is required


def test_evidence_resigned_with_a_random_key_fails_under_the_published_key(w: World) -> None:
    raw = services.evidence_read(actor=Actor.system(w.org), client=w.client_b).raw
    published = services.signing_key_ensure(w.org).public_key
    forged, forgers_key = forge_evidence(raw)
    assert services.evidence_verify(forged, public_key=forgers_key)[0]
    assert services.evidence_verify(forged, public_key=published) == (
        False,
        "signed by another key than the published one",
    )
    assert services.evidence_verify(raw, public_key=published)[0]
    assert not services.evidence_verify(raw, public_key="")[0]
    with pytest.raises(TypeError):
        services.evidence_verify(raw)  # type: ignore[call-arg]  # the point: it is required


# --- the commands: no pin, no verdict ---


@pytest.mark.parametrize("command", COMMANDS)
def test_without_a_pinned_key_either_command_exits_2(
    command: str, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "ao_not-used-without-key-url")  # a token alone pins nothing
    kind = command.removeprefix("verify_")
    for name in (kind, f"forged_{kind}"):
        with pytest.raises(CommandError) as refused:
            run(command, str(files[name]))
        assert refused.value.returncode == 2
        message = str(refused.value)
        for hint in ("--public-key", "--key-url", "/api/v1/signing-key/", "--token", TOKEN_ENV):
            assert hint in message, hint
    with pytest.raises(CommandError) as refused:
        run(command, str(files[kind]), "--public-key", " ")
    assert refused.value.returncode == 2
    with pytest.raises(CommandError) as refused:
        run(command, str(files[kind]), "--token", "token.txt")
    assert refused.value.returncode == 2
    assert "--token is used only with --key-url" in str(refused.value)


@pytest.mark.parametrize("command", COMMANDS)
def test_with_the_published_key_the_command_passes_the_genuine_file_only(
    w: World, command: str, files: dict[str, Path]
) -> None:
    published = services.signing_key_ensure(w.org).public_key
    kind = command.removeprefix("verify_")
    out, _ = run(command, str(files[kind]), "--public-key", published)
    assert out.startswith("OK: ")
    with pytest.raises(CommandError, match="INVALID: signed by another key") as refused:
        run(command, str(files[f"forged_{kind}"]), "--public-key", published)
    assert refused.value.returncode == 1


def test_manage_py_without_a_pin_exits_2(files: dict[str, Path], tmp_path: Path) -> None:
    """As an operator runs it: exit status 2 and the way to pin, on standard error."""
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", TOKEN_ENV)} | {
        "DJANGO_SETTINGS_MODULE": "agencyops.settings",
        "AGENCYOPS_VAR_DIR": str(tmp_path / "var"),
        "AGENCYOPS_MASTER_KEY": _b64(os.urandom(32)),
    }
    for command, name in (
        ("verify_certificate", "forged_certificate"),
        ("verify_evidence", "evidence"),
    ):
        done = subprocess.run(
            [sys.executable, "manage.py", command, str(files[name])],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert "OK" not in done.stdout
        assert "--public-key" in done.stderr
        assert "--key-url" in done.stderr
    helped = subprocess.run(
        [sys.executable, "manage.py", "verify_certificate", "--help"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert helped.returncode == 0, helped.stderr
    assert "Never pass the token itself" in " ".join(helped.stdout.split())


# --- --key-url: the published key, fetched ---


def test_key_url_pins_the_key_a_live_server_publishes(
    w: World, files: dict[str, Path], live_server: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    url = f"{live_server.url}/api/v1/signing-key/"
    published = services.signing_key_ensure(w.org).public_key
    # The reviewer's procurement token, in a file.
    _, procurement = services.evidence_token_issue(
        actor=Actor.system(w.org),
        client=w.client_b,
        name="reviewer",
        expires_at=timezone.now() + timedelta(days=30),
    )
    token_file = tmp_path / "token.txt"
    token_file.write_text(procurement + "\n")
    for command in COMMANDS:
        kind = command.removeprefix("verify_")
        out, err = run(command, str(files[kind]), "--key-url", url, "--token", str(token_file))
        assert out.startswith("OK: "), (out, err)
        assert published in err  # which key was pinned, said
        with pytest.raises(CommandError, match="INVALID: signed by another key"):
            run(command, str(files[f"forged_{kind}"]), "--key-url", url, "--token", str(token_file))

    # The same from standard input.
    monkeypatch.setattr("sys.stdin", io.StringIO(procurement))
    out, _ = run("verify_certificate", str(files["certificate"]), "--key-url", url, "--token", "-")
    assert out.startswith("OK: ")

    # A member's personal token, from the environment.
    _, personal = clients_services.api_token_issue(user=w.auditor)
    monkeypatch.setenv(TOKEN_ENV, personal)
    for command in COMMANDS:
        kind = command.removeprefix("verify_")
        out, _ = run(command, str(files[kind]), "--key-url", url)
        assert out.startswith("OK: ")
        with pytest.raises(CommandError, match="INVALID: signed by another key"):
            run(command, str(files[f"forged_{kind}"]), "--key-url", url)

    # Another organization's token fetches that organization's key: the genuine file of A
    # fails under it.
    _, theirs = clients_services.api_token_issue(user=w.other_admin)
    monkeypatch.setenv(TOKEN_ENV, theirs)
    with pytest.raises(CommandError, match="INVALID: signed by another key"):
        run("verify_certificate", str(files["certificate"]), "--key-url", url)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_key_fetch_that_fails_fails_closed(
    w: World, files: dict[str, Path], live_server: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    _, personal = clients_services.api_token_issue(user=w.auditor)
    token_file = tmp_path / "token.txt"
    token_file.write_text(personal)
    certificate = str(files["certificate"])
    base = live_server.url
    cases = [
        # unreachable
        ((f"http://127.0.0.1:{_closed_port()}/api/v1/signing-key/",), "Connection refused"),
        # no token: 401
        ((f"{base}/api/v1/signing-key/",), "the server answered 401"),
        # not JSON: a page
        ((f"{base}/login/", "--token", str(token_file)), "the answer is not JSON"),
        # JSON, but no key in it
        (
            (f"{base}/api/v1/evidence/schema/", "--token", str(token_file)),
            "the answer holds no Ed25519 public key",
        ),
        # a redirect is not followed (it would carry the token along)
        ((f"{base}/admin/", "--token", str(token_file)), "answered 302 (a redirect"),
        # not http(s)
        (("file:///etc/hostname",), "must be an http(s) URL"),
        # plain http to another machine: whoever is on the path could hand over their own key
        (("http://keys.example.test/api/v1/signing-key/",), "must use https"),
        # an unreadable token file
        (
            (f"{base}/api/v1/signing-key/", "--token", str(tmp_path / "missing.txt")),
            "Cannot read the token",
        ),
    ]
    for args, message in cases:
        out = io.StringIO()
        with pytest.raises(CommandError) as refused:
            call_command("verify_certificate", certificate, "--key-url", *args, stdout=out)
        assert message in str(refused.value), (args, str(refused.value))
        assert refused.value.returncode != 0
        assert "OK" not in out.getvalue()
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(CommandError, match="is empty"):
        run(
            "verify_certificate",
            certificate,
            "--key-url",
            f"{base}/api/v1/signing-key/",
            "--token",
            str(empty),
        )


# --- the certificate as served ---


def test_the_saved_certificate_response_verifies_byte_for_byte(w: World, tmp_path: Path) -> None:
    url = f"/api/v1/deletion-requests/{w.deletion_request_b.public_id}/certificate/"
    response = api_as(w.admin).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == services.certificate_file_bytes(w.certificate_b)
    saved = tmp_path / "certificate.json"
    saved.write_bytes(response.content)
    published = api_as(w.auditor).get("/api/v1/signing-key/").json()["public_key"]
    out, _ = run("verify_certificate", str(saved), "--public-key", published)
    assert out == "OK: the certificate is intact and its signature verifies\n"
    # and the answer is what the OpenAPI document says it is
    openapi = APIClient().get("/api/schema/?format=json").json()
    operation = openapi["paths"]["/api/v1/deletion-requests/{id}/certificate/"]["get"]
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert "canonical JSON" in operation["responses"]["200"]["description"]
    jsonschema.validate(json.loads(response.content), body)
    assert set(body["required"]) == {
        "certificate",
        "sha256",
        "signature",
        "algorithm",
        "public_key",
    }
