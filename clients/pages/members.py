"""Members and invitations: the list, inviting by e-mail, changing a role, and the invitee's
public page behind the one-time link."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from clients import selectors, services
from clients.models import Role
from clients.pages.forms import InvitationAcceptForm, InviteForm, RoleForm
from kernel.exceptions import ApplicationError, Conflict, Forbidden
from kernel.forms import form_refusal
from kernel.pages import TenantHttpRequest, tenant_page


@tenant_page
def member_list(request: TenantHttpRequest) -> HttpResponse:
    actor = request.actor
    memberships = selectors.membership_list(actor=actor).order_by("user__username")
    context = {
        "memberships": memberships,
        "invitations": selectors.invitation_pending_list(actor=actor, now=timezone.now()),
        "can_manage": actor.is_admin,
        "roles": Role.choices,
    }
    return render(request, "clients/settings/member_list.html", context)


@tenant_page
def member_invite(request: TenantHttpRequest) -> HttpResponse:
    actor = request.actor
    actor.require_admin("invite members")
    form = InviteForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                invitation = services.invitation_send(
                    actor=actor,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    link_for=lambda token: request.build_absolute_uri(
                        reverse("invitation-accept", kwargs={"token": token})
                    ),
                )
            except (ValidationError, ApplicationError) as error:
                status = form_refusal(form, error)
            else:
                messages.success(
                    request,
                    f"Invitation sent to {invitation.email}; the link works once, until "
                    f"{timezone.localtime(invitation.expires_at):%d %b %Y %H:%M %Z}.",
                )
                return redirect("member-list")
    return render(request, "clients/settings/member_invite.html", {"form": form}, status=status)


@require_POST
@tenant_page
def member_role(request: TenantHttpRequest, membership_id: UUID) -> HttpResponse:
    actor = request.actor
    membership = selectors.membership_get(actor=actor, public_id=membership_id)
    # The right before the form: who may not change roles is refused, not told its errors.
    actor.require_admin("change roles")
    form = RoleForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "error.html",
            {"title": "Role not changed", "message": "Choose one of the roles."},
            status=400,
        )
    try:
        services.membership_set_role(
            actor=actor, membership=membership, role=form.cleaned_data["role"]
        )
    except (Conflict, Forbidden) as error:
        # The last owner, or an admin touching an owner: said on the list, nothing changed.
        messages.error(request, error.message)
    else:
        messages.success(
            request, f"{membership.user.username} is now {membership.get_role_display()}."
        )
    return redirect("member-list")


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Public: the invitee is not signed in. The token in the path is the whole credential;
    unknown answers 404, used or expired 410, never a 500."""
    try:
        invitation = services.invitation_for_token(token=token)
    except ApplicationError as error:
        return render(
            request,
            "error.html",
            {"title": "Invitation not valid", "message": error.message},
            status=error.status,
        )
    form = InvitationAcceptForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.invitation_accept(
                    token=token,
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password"],
                )
            except (ValidationError, ApplicationError) as error:
                status = form_refusal(form, error)
            else:
                messages.success(request, "Your account is ready: sign in with it.")
                return redirect("login")
    context = {"form": form, "invitation": invitation}
    return render(request, "clients/settings/invitation_accept.html", context, status=status)
