"""Restore in the pages: the snapshot browser (folders, files, the copy to read from), the
download of one file, the point-in-time restore form and a restore's live progress."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import FileResponse, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from backups import selectors, services
from backups.api.core import DownloadQuerySerializer
from backups.forms import RestoreForm
from backups.models import Snapshot
from backups.services.sources import is_source_backed
from backups.views import _context as dataset_page_context
from clients.models import Dataset
from clients.selectors import dataset_get
from kernel.exceptions import ApplicationError, Conflict, NotFound, ValidationFailed
from kernel.http import request_origin
from kernel.pages import TenantHttpRequest, tenant_page
from kernel.tenancy import Actor


def _copy(actor: Actor, snapshot: Snapshot, target: str) -> tuple[Snapshot, list[Snapshot]]:
    """The copy `?target=` names (a location's public id) among the snapshot's copies, or the
    snapshot itself; 404 for a target that holds no copy of it."""
    copies = list(selectors.snapshot_copies(actor=actor, snapshot=snapshot))
    if not target:
        return snapshot, copies
    chosen = next((c for c in copies if str(c.location.public_id) == target), None)
    if chosen is None:
        raise NotFound("No copy of this snapshot on that target.")
    return chosen, copies


def _offset(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


@tenant_page
def snapshot_browse(request: TenantHttpRequest, snapshot_id: UUID) -> HttpResponse:
    """A snapshot's folder: its folders and files one page at a time, on the copy chosen."""
    actor = request.actor
    snapshot, copies = _copy(
        actor,
        selectors.snapshot_get(actor=actor, public_id=snapshot_id),
        request.GET.get("target", ""),
    )
    dataset = snapshot.dataset
    folder = request.GET.get("path", "")
    listing = None
    listing_error = ""
    try:
        listing = services.snapshot_folder_list(
            actor=actor, snapshot=snapshot, folder=folder, offset=_offset(request.GET.get("offset"))
        )
    except Conflict as error:  # the copy cannot be read now: say so, keep the rest of the page
        listing_error = error.message
    form = RestoreForm(
        actor=actor,
        dataset=dataset,
        initial={
            "snapshot": snapshot.public_id,
            "source": snapshot.location.public_id,
            "path_prefix": listing.folder if listing else "",
        },
    )
    context = {
        "dataset": dataset,
        "snapshot": snapshot,
        "copies": copies,
        "listing": listing,
        "listing_error": listing_error,
        "source_backed": is_source_backed(dataset),
        "restore_form": form,
        "deleted": dataset.lifecycle_state in ("deleted", "deletion_pending"),
    }
    return render(request, "backups/restore/snapshot_browse.html", context)


@tenant_page
def snapshot_download(request: TenantHttpRequest, snapshot_id: UUID) -> HttpResponse:
    """One file of the snapshot, streamed, through the API's service: verified against its
    sha256, recorded as a copy handed out and in the access log."""
    actor = request.actor
    snapshot, _ = _copy(
        actor,
        selectors.snapshot_get(actor=actor, public_id=snapshot_id),
        request.GET.get("target", ""),
    )
    dataset = snapshot.dataset
    # The right before the query: a caller who may not download is refused, not told its errors.
    actor.require_level(
        "restore", client_id=dataset.client_id, dataset_id=dataset.pk, action="download data"
    )
    query = DownloadQuerySerializer(data=request.GET)
    if not query.is_valid():
        raise ValidationFailed("Name the file to download (?path=).")
    downloaded = services.snapshot_file_download(
        actor=actor,
        snapshot=snapshot,
        path=query.validated_data["path"],
        origin=request_origin(request),
    )
    response = FileResponse(downloaded.open(), as_attachment=True, filename=downloaded.name)
    response["X-Content-SHA256"] = downloaded.sha256
    # A streamed response (not an HttpResponse subclass), which tenant_page's type does not
    # name; it only passes the response through.
    return response  # type: ignore[return-value]


def _restore_snapshot(actor: Actor, dataset: Dataset, form: RestoreForm) -> Snapshot:
    """The snapshot the form names (the browser's), or the newest at or before its time."""
    chosen = form.cleaned_data.get("snapshot")
    if chosen:
        snapshot = selectors.snapshot_get(actor=actor, public_id=chosen)
        if snapshot.dataset_id != dataset.pk:
            raise NotFound()
        source = form.cleaned_data.get("source")
        if source is not None and source.pk != snapshot.location_id:
            snapshot, _ = _copy(actor, snapshot, str(source.public_id))
        return snapshot
    return services.restore_point_pick(
        dataset=dataset, as_of=form.cleaned_data["as_of"], location=form.cleaned_data["source"]
    )


@require_POST
@tenant_page
def dataset_restore(request: TenantHttpRequest, dataset_id: UUID) -> HttpResponse:
    actor = request.actor
    dataset = dataset_get(actor=actor, public_id=dataset_id)
    # The right before the form: a caller who may not restore is refused, not told its errors.
    actor.require_level(
        "restore", client_id=dataset.client_id, dataset_id=dataset.pk, action="restore data"
    )
    form = RestoreForm(request.POST, actor=actor, dataset=dataset)
    status = 400
    if form.is_valid():
        try:
            snapshot = _restore_snapshot(actor, dataset, form)
            path_prefix = services.restore_path_prefix_check(
                snapshot=snapshot, path_prefix=form.cleaned_data["path_prefix"]
            )
            restore = services.restore_request(
                actor=actor,
                snapshot=snapshot,
                destination_location=form.cleaned_data["destination_location"],
                destination_path=form.cleaned_data["destination_path"],
                path_prefix=path_prefix,
                overwrite=form.cleaned_data["overwrite"],
                origin=request_origin(request),
            )
        except ApplicationError as error:
            if isinstance(error, NotFound) or error.status in (401, 403):
                raise
            form.add_application_error(error)
            status = error.status
        else:
            taken = timezone.localtime(snapshot.taken_at)  # the person's zone, named
            when = f"{taken:%-d %b %Y, %H:%M:%S} {taken.tzname()}"
            messages.success(
                request,
                f"Restoring the snapshot of {when} from {snapshot.location.name} into "
                f"{restore.destination_path}.",
            )
            return redirect(reverse("dataset-detail", args=[dataset.public_id]) + "#restores")
    context = dataset_page_context(request, actor, dataset, restore_form=form)
    return render(request, "backups/dataset_detail.html", context, status=status)


@tenant_page
def restore_progress(request: TenantHttpRequest, restore_id: UUID) -> HttpResponse:
    """Polled by a restore's progress bar (session auth, same scoping as the page)."""
    restore = selectors.restore_list(actor=request.actor).filter(public_id=restore_id).first()
    if restore is None:
        raise NotFound()
    return JsonResponse(
        {
            "status": restore.status,
            "status_display": restore.get_status_display(),
            "bytes_done": restore.bytes_done,
            "bytes_total": restore.bytes_total,
            "percent": restore.progress_percent,
            "error": restore.error,
        }
    )
