"""``/api/datasets``: the datasets (task sources), their versions, and uploads
into them (DESIGN "Datasets"). Staff or ``eval.manage_datasets``; others 403.

The upload (``POST /api/datasets/<name>/imports``) is a plain Django view
(``import_view``), not django-ninja's: ninja would read the whole body
before the view runs. Here the caller is known (401), allowed (403) and the
dataset accepted (400, 409) before a byte of the body is read; then the
body streams to a temporary file within DATASET_MAX_UPLOAD_BYTES (413; the
API_MAX_BODY_BYTES cap does not apply), and eval/sync/upload.py checks it
whole before it writes anything. The ninja declaration below documents it.
"""

import json

from django.conf import settings
from django.db.models import Count, Max, Q
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import Query, Router

from eval.access import may_manage_datasets
from eval.api.auth import authenticate
from eval.api.errors import ApiError, forbidden, invalid, method_not_allowed, not_found, server_error
from eval.api.request_data import check_query
from eval.api.responses import answers
from eval.api.upload_body import check_csrf, receive
from eval.api.upload_schemas import (
    MULTIPART_BODY,
    DatasetList,
    ImportBody,
    ImportInvalid,
    ImportOut,
    ImportQuery,
    VersionList,
)
from eval.models import DatasetVersion, Task
from eval.sync.datasets import UploadRefused, check_dataset_name, is_dataset_name
from eval.sync.formats import SourceError, json_records
from eval.sync.upload import FORMATS, MODES, Upload, import_upload

router = Router(tags=["datasets"])

SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".json": "json"}
CONTENT_TYPES = {
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/jsonlines": "jsonl",
    "text/csv": "csv",
}
BODY_OPTIONS = {"dry_run", "mode", "mapping", "allow_mass_missing", "format"}
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _check_manager(user):
    if not may_manage_datasets(user):
        raise forbidden("datasets are managed by staff or holders of the eval.manage_datasets permission")


# --- reading ---------------------------------------------------------------------------


def datasets_json():
    """Every dataset: task sources with tasks, and datasets with versions only."""
    gone = Count("id", filter=Q(missing_since__isnull=False))
    tasks = Task.objects.order_by().values("source").annotate(n=Count("id"), gone=gone)
    versions = DatasetVersion.objects.order_by().values("dataset").annotate(n=Count("id"), last=Max("created_at"))
    rows = {
        row["source"]: {"name": row["source"], "tasks": row["n"] - row["gone"], "missing": row["gone"]} for row in tasks
    }
    for entry in rows.values():
        entry.update(versions=0, last_import_at=None)
    for row in versions:
        entry = rows.setdefault(
            row["dataset"], {"name": row["dataset"], "tasks": 0, "missing": 0, "versions": 0, "last_import_at": None}
        )
        entry["versions"], entry["last_import_at"] = row["n"], row["last"].isoformat()
    return [rows[name] for name in sorted(rows)]


def version_json(version):
    return {
        "version": version.number,
        "created_at": version.created_at.isoformat(),
        "created_by": version.created_by.get_username() if version.created_by_id else None,
        "mode": version.mode,
        "file_name": version.file_name,
        "sha256": version.sha256,
        "added": version.added,
        "changed": version.changed,
        "missing": version.missing,
        "unchanged": version.unchanged,
        "outputs": version.outputs,
    }


@router.get("", response=answers({200: DatasetList}, 403), url_name="api-datasets")
def list_datasets(request):
    """Every dataset (a task source) with its tasks, those gone missing, its versions and its last import."""
    _check_manager(request.user)
    return {"datasets": datasets_json()}


@router.get("/{name}/versions", response=answers({200: VersionList}, 403, 404), url_name="api-dataset-versions")
def list_versions(request, name: str):
    """The dataset's versions, newest first: each import that changed something."""
    _check_manager(request.user)
    versions = DatasetVersion.objects.filter(dataset=name).select_related("created_by").order_by("-number")
    known = is_dataset_name(name) and (versions.exists() or Task.objects.filter(source=name).exists())
    if not known:
        raise not_found("no such dataset")
    return {"dataset": name, "versions": [version_json(v) for v in versions]}


@router.post(
    "/{name}/imports",
    response={**answers({200: ImportOut, 201: ImportOut}, 403, 404, 409, write=True), 400: ImportInvalid},
    url_name="api-dataset-imports",
    openapi_extra={"requestBody": {"content": {"multipart/form-data": MULTIPART_BODY}}},
)
def import_dataset(request, name: str, options: Query[ImportQuery], payload: ImportBody):
    """Upload records into a dataset (a new one is made): multipart field `file`
    (`.jsonl`, `.csv` or `.json`, or `format=`), or a JSON body `{"records": [...]}`.
    The whole file is checked first: any bad line imports nothing (400 `invalid` with
    every `errors` item: `line`, `message`). `dry_run=1`: 200 with the counts and a
    `preview`, nothing written. `mode=replace` marks the dataset's tasks not in the file
    missing (refused, 409, when that is more than half of them, unless
    `allow_mass_missing=1`). CSV `mapping`: `{"id": col, "prompt": col, "reference": col}`.
    Over DATASET_MAX_UPLOAD_BYTES: 413. The dataset the sync daemon keeps: 409.

    Served by a plain Django view that streams the body (eval/api/datasets.import_view)."""
    raise ApiError("server_error", "served by eval.api.datasets.import_view")  # never routed here


# --- the upload --------------------------------------------------------------------------


def _flag(value, name):
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise invalid(f"{name} must be 1 or 0 (true or false)", name)


def _mapping(value):
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise invalid('mapping must be a JSON object {"id": column, "prompt": column, ...}', "mapping") from None
    return value


def _format(options, received):
    fmt = options.get("format") or ""
    if fmt:
        if fmt not in FORMATS:
            raise invalid(f"format must be one of {', '.join(FORMATS)}", "format")
        return fmt
    name = received.file_name.lower()
    for suffix, found in SUFFIXES.items():
        if name.endswith(suffix):
            return found
    found = CONTENT_TYPES.get(received.content_type)
    if found is None:
        raise invalid("say which format: a file name ending .jsonl, .csv or .json, or format=jsonl|csv|json", "format")
    return found


def _body_options(received):
    """The members of a JSON body other than its records (dry_run, mode...): one streaming pass."""
    extra = {}
    try:
        with open(received.path, "rb") as stream:
            for _ in json_records(stream, keys=("records", "tasks"), extra=extra):
                pass
    except SourceError:
        return {}  # the check reports it, with the rest
    unknown = sorted(set(extra) - BODY_OPTIONS)
    if unknown:
        raise invalid(f"unknown field {unknown[0]!r}", unknown[0])
    return extra


def _upload(name, request, received, user):
    options = {**request.GET.dict(), **{k: v for k, v in received.fields.items() if v is not None}}
    if not received.fields and CONTENT_TYPES.get(received.content_type) == "json" and not options.get("format"):
        options.update(_body_options(received))
    mode = options.get("mode") or "append"
    if mode not in MODES:
        raise invalid("mode must be append or replace", "mode")
    return Upload(
        dataset=name,
        path=received.path,
        fmt=_format(options, received),
        mode=mode,
        dry_run=_flag(options.get("dry_run"), "dry_run"),
        mapping=_mapping(options.get("mapping")),
        file_name=received.file_name,
        sha256=received.sha256,
        user=user,
        allow_mass_missing=_flag(options.get("allow_mass_missing"), "allow_mass_missing"),
    )


def _answer(report):
    body = report.answer()
    if report.error_count:
        shown = len(report.errors)
        more = f" (the first {shown} listed)" if shown < report.error_count else ""
        message = f"{report.error_count} bad line(s){more}: nothing was imported"
        raise ApiError("invalid", message, extra={k: body[k] for k in ("errors", "error_count", "preview")})
    return JsonResponse(body, status=200 if report.dry_run else 201)


def _import(request, name):
    user = authenticate(request, csrf=False)
    check_csrf(request)
    check_query(request.GET)
    _check_manager(user)
    try:
        check_dataset_name(name)
    except UploadRefused as refused:
        raise ApiError(refused.code, refused.message, field=refused.field) from None
    received = receive(request, settings.DATASET_MAX_UPLOAD_BYTES)
    try:
        upload = _upload(name, request, received, user)
        try:
            report = import_upload(upload)
        except UploadRefused as refused:
            raise ApiError(refused.code, refused.message, field=refused.field) from None
    finally:
        received.close()
    return _answer(report)


@csrf_exempt  # checked after the caller is known, from the header only (upload_body.check_csrf)
def import_view(request, name):
    try:
        if request.method != "POST":
            authenticate(request, csrf=False)
            raise method_not_allowed(request.method, ["POST"])
        return _import(request, name)
    except ApiError as error:
        return error.response()
    except Exception as error:  # a JSON 500, not Django's HTML page
        return server_error(request, error)
