"""An upload's body, streamed to a temporary file while its bytes are counted
and hashed: nothing holds the whole body in memory, and past the limit
(DATASET_MAX_UPLOAD_BYTES) reading stops with a 413.

- multipart/form-data: the ``file`` field goes through Django's multipart
  parser into our upload handler (the other fields are small form values);
- any other body (a JSON ``{"records": [...]}``, JSONL, CSV) is the file.

A body sent chunked (no Content-Length) is read from the server's input
until its end (gunicorn decodes the chunks), within the same limit.
The caller's CSRF token must come in the X-CSRFToken header: the check
(``check_csrf``) never reads a form field, so it reads no body either.
"""

import hashlib
import tempfile
from dataclasses import dataclass, field

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import QueryDict
from django.http.multipartparser import MultiPartParser, MultiPartParserError

from eval.api.auth import SAFE_METHODS, _csrf
from eval.api.errors import ApiError, invalid

READ_BYTES = 64 * 1024
FILE_FIELD = "file"


class UploadTooLarge(Exception):
    pass


def too_large(limit):
    return ApiError("too_large", f"the upload is over DATASET_MAX_UPLOAD_BYTES ({limit} bytes)")


@dataclass
class Received:
    file: object  # a temporary file holding the upload, at position 0
    file_name: str = ""
    content_type: str = ""
    fields: dict = field(default_factory=dict)  # multipart form fields (text)
    sha256: str = ""
    size: int = 0

    @property
    def path(self):
        return self.file.name

    def close(self):
        self.file.close()


class _Spool:
    """A temporary file that counts and hashes what is written to it."""

    def __init__(self, limit):
        self.limit = limit
        self.file = tempfile.NamedTemporaryFile(prefix="eval-upload-")  # noqa: SIM115 - closed by Received.close
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.size += len(data)
        if self.size > self.limit:
            raise UploadTooLarge
        self.hasher.update(data)
        self.file.write(data)

    def received(self, **fields):
        self.file.flush()
        self.file.seek(0)
        return Received(self.file, sha256=self.hasher.hexdigest(), size=self.size, **fields)


class _FileField(FileUploadHandler):
    """Django's multipart parser hands the ``file`` field's bytes here; other files are skipped."""

    def __init__(self, limit):
        super().__init__()
        self.spool = None
        self.limit = limit

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name != FILE_FIELD or self.spool is not None:
            raise SkipFile
        self.spool = _Spool(self.limit)

    def receive_data_chunk(self, raw_data, start):
        self.spool.write(raw_data)

    def file_complete(self, file_size):
        return None


class _NoFormFields:
    """The request as the CSRF check sees it: no form fields, so the token is
    read from the X-CSRFToken header and the check never touches the body."""

    POST = QueryDict()

    def __init__(self, request):
        object.__setattr__(self, "_request", request)

    def __getattr__(self, name):
        return getattr(self._request, name)

    def __setattr__(self, name, value):
        setattr(self._request, name, value)


def check_csrf(request):
    """A session's unsafe call needs the X-CSRFToken header (Bearer calls have no CSRF)."""
    if getattr(request, "auth_method", "") != "session" or request.method in SAFE_METHODS:
        return
    reason = _csrf.process_view(_NoFormFields(request), None, (), {})
    if reason is not None:
        raise ApiError("csrf_failed", f"CSRF check failed: {reason} (send the X-CSRFToken header)")


def _declared_length(request):
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _input(request):
    """What to read the body from: the request, or for a chunked body without a
    Content-Length the server's input itself (Django would read it as empty)."""
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and not request.META.get("CONTENT_LENGTH"):
        return request.META["wsgi.input"], True
    return request, False


def receive(request, limit):
    """The body as a Received (close it), or ApiError: 413 past ``limit``, 400 for a bad multipart body."""
    if _declared_length(request) > limit:
        raise too_large(limit)
    stream, chunked = _input(request)
    content_type = request.META.get("CONTENT_TYPE", "")
    try:
        if content_type.startswith("multipart/form-data"):
            return _multipart(request, stream, chunked, limit)
        spool = _Spool(limit)
        while chunk := stream.read(READ_BYTES):
            spool.write(chunk)
        return spool.received(content_type=content_type.split(";")[0].strip())
    except UploadTooLarge:
        raise too_large(limit) from None
    except RequestDataTooBig:
        raise too_large(limit) from None
    except (MultiPartParserError, TooManyFieldsSent, SuspiciousOperation) as error:
        raise invalid(f"the multipart body could not be read: {error}") from None


def _multipart(request, stream, chunked, limit):
    handler = _FileField(limit)
    meta = dict(request.META)
    if chunked:  # the parser only needs a non-zero length; it reads to the end of the stream
        meta["CONTENT_LENGTH"] = str(limit)
    try:
        form, _ = MultiPartParser(meta, stream, [handler], request.encoding or "utf-8").parse()
    except BaseException:
        if handler.spool is not None:
            handler.spool.file.close()
        raise
    if handler.spool is None:
        raise invalid(f"the multipart body has no {FILE_FIELD!r} field", FILE_FIELD)
    fields = {name: form.get(name) for name in form}
    return handler.spool.received(file_name=handler.file_name or "", fields=fields)
