"""The shared shape of the offline verification commands (certificates, evidence): read a saved
file, check it against the organization's published key, exit non-zero when it fails.

Verification fails closed: a signature proves who signed only under a key the reviewer got
from somewhere else than the file, so without a pinned key (`--public-key`, or `--key-url` to
fetch the published one) the command says how to pin one and exits 2, never OK. This is the
operator's and the reviewer's command: it fetches whatever URL it is given.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import ipaddress
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

TOKEN_ENV = "AGENCYOPS_TOKEN"  # noqa: S105  # the variable's name, not a token
KEY_PATH = "/api/v1/signing-key/"
FETCH_TIMEOUT_SECONDS = 10
# The key document is three short strings; anything much larger is not it.
MAX_KEY_DOCUMENT_BYTES = 64 * 1024
# `CommandError.returncode` for "nothing was checked": the usage error's status, apart from
# 1 ("checked, and it is not valid").
NOT_PINNED = 2

HOW_TO_PIN = (
    "Refusing to verify without a pinned public key: the key inside the file proves nothing, "
    "anyone can re-sign an edited document with a key of their own. Pin the organization's "
    f"published key (GET {KEY_PATH}, readable with a personal API token or the client's "
    "procurement token) with --public-key B64, or fetch it with --key-url "
    f"https://<host>{KEY_PATH} and a token from --token FILE (- for standard input) or "
    f"the {TOKEN_ENV} environment variable."
)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the token to wherever it points: refuse it (an HTTPError)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _read_token(source: str | None) -> str | None:
    if source is None:
        return os.environ.get(TOKEN_ENV, "").strip() or None
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"Cannot read the token from {source}: {exc}") from None
    token = text.strip()
    if not token:
        raise CommandError(f"The token file {source} is empty.")
    return token


def _loopback(url: str) -> bool:
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def signing_key_fetch(url: str, *, token: str | None) -> str:
    """The `public_key` of the JSON an AgencyOps signing-key endpoint answers at `url`.

    Fails closed (CommandError) when the URL is not http(s), the server is unreachable, answers
    anything but 200 (a redirect included), or the body is not that JSON with an Ed25519 key.
    """
    if not url.startswith(("https://", "http://")):
        raise CommandError(f"--key-url must be an http(s) URL, like https://<host>{KEY_PATH}")
    if url.startswith("http://") and not _loopback(url):
        # Over plain http anyone on the path could hand over their own key (and then their own
        # signature verifies) and read the token: https, or a server on this machine.
        raise CommandError(
            f"--key-url must use https (plain http only to this machine: localhost, 127.0.0.1,"
            f" [::1]); a key fetched in clear could be anyone's. Given: {url}"
        )
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    opener = urllib.request.build_opener(_NoRedirects())
    failed = f"Cannot fetch the signing key from {url}"
    try:
        request = urllib.request.Request(url, headers=headers)  # noqa: S310  # scheme checked
        with opener.open(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
            status = response.status
            body = response.read(MAX_KEY_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        hint = ""
        if exc.code in (401, 404):
            hint = " (is the token valid, and of this organization?)"
        elif 300 <= exc.code < 400:
            hint = " (a redirect, not followed: give the final URL)"
        raise CommandError(f"{failed}: the server answered {exc.code}{hint}.") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError is an OSError
        reason = getattr(exc, "reason", exc)
        raise CommandError(f"{failed}: {reason}.") from None
    if status != 200:
        raise CommandError(f"{failed}: the server answered {status}.")
    if len(body) > MAX_KEY_DOCUMENT_BYTES:
        raise CommandError(f"{failed}: the answer is too large to be a signing key.")
    try:
        published = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise CommandError(f"{failed}: the answer is not JSON.") from None
    key = published.get("public_key") if isinstance(published, dict) else None
    if not isinstance(key, str) or published.get("algorithm") != "Ed25519":
        raise CommandError(f"{failed}: the answer holds no Ed25519 public key.")
    try:
        raw = base64.b64decode(key, validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:  # a raw Ed25519 public key
        raise CommandError(f"{failed}: the answer's public key is not an Ed25519 key.")
    return key


class VerifySignedFileCommand(BaseCommand):
    file_help = "The signed JSON as the API served it."

    def verify(self, raw: bytes, *, public_key: str) -> tuple[bool, str]:
        raise NotImplementedError

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help=self.file_help)
        pin = parser.add_mutually_exclusive_group()
        pin.add_argument(
            "--public-key",
            metavar="B64",
            help=f"The organization's published key (the public_key of GET {KEY_PATH}), "
            "obtained apart from the file. One of --public-key or --key-url is required.",
        )
        pin.add_argument(
            "--key-url",
            metavar="URL",
            help=f"Fetch the published key from this URL (https://<host>{KEY_PATH}) and pin it.",
        )
        parser.add_argument(
            "--token",
            metavar="FILE",
            help="With --key-url: read the API token (a personal or procurement token) from "
            f"FILE, or from standard input with -; else from the {TOKEN_ENV} environment "
            "variable. Never pass the token itself as an argument: a command line is visible "
            "to every user of the machine and kept in shell history.",
        )

    def _pinned_key(self, options: dict[str, Any]) -> str:
        if options.get("token") is not None and not options.get("key_url"):
            raise CommandError("--token is used only with --key-url.", returncode=NOT_PINNED)
        if options.get("key_url"):
            key = signing_key_fetch(options["key_url"], token=_read_token(options.get("token")))
            self.stderr.write(f"Pinned the key published at {options['key_url']}: {key}")
            return key
        key = (options.get("public_key") or "").strip()
        if not key:
            raise CommandError(HOW_TO_PIN, returncode=NOT_PINNED)
        return key

    def handle(self, *args: Any, **options: Any) -> None:
        public_key = self._pinned_key(options)
        try:
            raw = Path(options["file"]).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}") from None
        ok, message = self.verify(raw, public_key=public_key)
        if not ok:
            raise CommandError(f"INVALID: {message}")
        self.stdout.write(f"OK: {message}")
