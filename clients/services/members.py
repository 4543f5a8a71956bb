"""Logins, organizations and their members.

Usernames are global (one login belongs to one organization), so what a tenant may learn about
them is kept to the least: see `member_create`. A new username must be one nobody can mistake
for another (see `username_problem`) and that no existing login already has in another case or
form (see `username_twin_get`).
"""

from __future__ import annotations

import secrets
import unicodedata
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from clients import signals
from clients.models import Membership, Organization, Role
from clients.services.common import unique_slug, validated_save
from kernel.exceptions import Conflict, Forbidden, ValidationFailed
from kernel.tenancy import Actor

USERNAME_MAX_LENGTH = 150  # auth.User.username
USERNAME_UNAVAILABLE = "This username is not available; choose another."
# A cell starting with one of these is run as a formula by spreadsheets (CSV exports).
_FORMULA_STARTS = ("=", "+", "-", "@")

# Scripts one name is normally written in together (UTS #39's "highly restrictive" sets): a
# Japanese name in Han, Hiragana and Katakana, a Korean one in Han and Hangul, a Chinese one in
# Han and Bopomofo. Any other mix of scripts is refused.
_SCRIPTS_WRITTEN_TOGETHER = (
    frozenset({"HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"HAN", "HANGUL"}),
    frozenset({"HAN", "BOPOMOFO"}),
)
# Character names that do not begin with their script's name; None: the script-neutral
# "Common" modifier letters (U+02BB, the Hawaiian okina; U+30FC, the Japanese long-vowel mark),
# which mix with any script.
_NAME_SCRIPT = {
    "CJK": "HAN",
    "IDEOGRAPHIC": "HAN",
    "HANGZHOU": "HAN",
    "ROMAN": "LATIN",
    "TURNED": "LATIN",
    "HENTAIGANA": "HIRAGANA",
    "MODIFIER": None,
    "KATAKANA-HIRAGANA": None,
}
# Scripts whose names take two words ("OLD ITALIC" and "OLD PERSIAN" are different scripts).
_TWO_WORD_SCRIPTS = frozenset({"OLD", "TAI", "LINEAR", "INSCRIPTIONAL", "MEROITIC"})


def _script(char: str) -> str | None:
    """The Unicode script of a username character, or None for digits and `_` (and `@ . + -`),
    which belong to no script.

    Python's unicodedata has no Script property, but a character's name begins with its
    script's ("LATIN SMALL LETTER A", "CYRILLIC SMALL LETTER A"), apart from the names in
    `_NAME_SCRIPT`. Checked against the Script property over every NFKC-stable character a
    username may hold: the groups are the scripts, except that a few dozen rare "Common"
    numerals count as a script of their own (they may then not be mixed: stricter, never
    looser) and four Latin modifier letters count for none.
    """
    if char.isdecimal() or char in "_@.+-":
        return None
    name = unicodedata.name(char, "")
    if not name:  # this Python names no Tangut ideograph
        return "TANGUT" if 0x17000 <= ord(char) <= 0x18D7F else f"U+{ord(char):04X}"
    words = name.split(" ")
    if words[0] in _TWO_WORD_SCRIPTS:
        return " ".join(words[:2])
    return _NAME_SCRIPT.get(words[0], words[0])


def username_problem(username: str) -> str | None:
    """Why `username` may not name a new login, or None: Django's username characters (letters,
    digits, `@ . + - _`) and length; no leading `= + - @` (a spreadsheet runs it); already in
    NFKC form (no full-width or compatibility characters); letters of one script only ("admin"
    spelled with a Cyrillic "a", U+0430, is refused). Whether the name is taken is not looked
    at."""
    if not username:
        return "A username is required."
    if username.startswith(_FORMULA_STARTS):
        return "A username may not start with =, +, - or @ (a spreadsheet runs it as a formula)."
    if len(username) > USERNAME_MAX_LENGTH:
        return f"At most {USERNAME_MAX_LENGTH} characters."
    if unicodedata.normalize("NFKC", username) != username:
        return "Use plain characters: no full-width or compatibility characters."
    try:
        UnicodeUsernameValidator()(username)
    except DjangoValidationError as error:
        return str(error.messages[0])
    scripts = {script for char in username if (script := _script(char)) is not None}
    if len(scripts) > 1 and not any(scripts <= group for group in _SCRIPTS_WRITTEN_TOGETHER):
        return "Use letters of one script only (not Latin mixed with Cyrillic or Greek)."
    return None


def _username_key(username: str) -> str:
    # NFKC, case-folded, NFKC again (folding can leave a string that is not NFKC): `Owner`,
    # `OWNER` and `owner` share a key, as do `straße` and `STRASSE`.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def username_twin_get(*, username: str) -> str | None:
    """The existing login that `username` would be mistaken for (the same one, or the same in
    another case or form), or None.

    Compared in Python over every login (logins are few, and SQLite's case-insensitive matching
    is ASCII-only); every login is looked at whatever the answer, so the time taken does not
    tell whether, or where, a twin was found.
    """
    key = _username_key(username)
    twin = None
    for existing in get_user_model().objects.values_list("username", flat=True):
        if _username_key(existing) == key:
            twin = existing
    return twin


def user_create(
    *,
    username: str,
    email: str = "",
    password: str | None = None,
    generate_password: bool = True,
) -> tuple[Any, str]:
    """Create a login. Returns the user and the password: the one given, else a generated one,
    else (`generate_password=False`) none — "" and an unusable password.

    The username must pass `username_problem`, and no login may have it in any case or form
    (`username_twin_get`): refused on `username` with one answer, whoever holds it.
    """
    problem = username_problem(username)
    if problem is not None:
        raise ValidationFailed(problem, fields={"username": problem})
    if password is None and generate_password:
        password = secrets.token_urlsafe(12)
    # Hashed before the name is looked up: a taken name costs the time a free one does.
    encoded = make_password(password)
    unavailable = ValidationFailed(USERNAME_UNAVAILABLE, fields={"username": USERNAME_UNAVAILABLE})
    if username_twin_get(username=username) is not None:
        raise unavailable
    user_model = get_user_model()
    user = user_model(
        username=username, email=user_model.objects.normalize_email(email), password=encoded
    )
    try:
        user.full_clean(validate_unique=False)
    except DjangoValidationError as error:
        raise ValidationFailed("The login is not valid.", fields=error.message_dict) from None
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # the same name, created by a concurrent request
        raise unavailable from None
    return user, password or ""


@transaction.atomic
def organization_create(*, name: str, owner: User, slug: str = "") -> Organization:
    """Create an agency with its first owner. The owner may belong to no other organization."""
    if Membership.objects.filter(user=owner).exists():
        raise Conflict(f"{owner.username} already belongs to an organization.")
    slug = slug or unique_slug(name, lambda s: Organization.objects.filter(slug=s).exists())
    organization = validated_save(Organization(name=name, slug=slug))
    validated_save(Membership(organization=organization, user=owner, role=Role.OWNER))
    signals.organization_created.send(sender=Organization, organization=organization)
    return organization


def require_may_add(actor: Actor, role: str) -> None:
    actor.require_admin("add members")
    if role == Role.OWNER and actor.role not in ("owner", "system"):
        raise Forbidden("Only an owner may make someone an owner.")


@transaction.atomic
def membership_add(*, actor: Actor, user: User, role: str) -> Membership:
    """Add a user to the actor's organization. Only owners create owners."""
    require_may_add(actor, role)
    if Membership.objects.filter(user=user).exists():
        raise ValidationFailed(
            "This user already belongs to an organization.",
            fields={"username": "Already a member of an organization."},
        )
    return validated_save(Membership(organization=actor.organization, user=user, role=role))


@transaction.atomic
def membership_set_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    """Change a member's role. Admins cannot touch owners; the last owner stays an owner."""
    actor.require_admin("change roles")
    touches_owner = Role.OWNER in (membership.role, role)
    if touches_owner and actor.role not in ("owner", "system"):
        raise Forbidden("Only an owner may grant or remove the owner role.")
    if membership.role == Role.OWNER and role != Role.OWNER:
        owners = Membership.objects.select_for_update().filter(
            organization_id=membership.organization_id, role=Role.OWNER
        )
        if owners.count() <= 1:
            raise Conflict("An organization keeps at least one owner.")
    membership.role = role
    return validated_save(membership, update_fields=["role"])


@transaction.atomic
def member_create(
    *, actor: Actor, username: str, role: str, email: str = "", password: str | None = None
) -> Membership:
    """Add a member to the actor's organization under a new username, creating the login
    (without a password unless one is given: the person sets it, or signs in another way).

    A tenant never attaches an existing login, and never learns where one is: a username taken
    in this organization, in another one or by a login of none — or its twin in another case or
    form — gets the one answer `USERNAME_UNAVAILABLE`, after the same work. Only the operator
    attaches existing logins (`manage.py add_member`).
    """
    # Rights first, so a refusal of the role never depends on the name.
    require_may_add(actor, role)
    user, _ = user_create(
        username=username, email=email, password=password or None, generate_password=False
    )
    return membership_add(actor=actor, user=user, role=role)
