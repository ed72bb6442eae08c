"""Task sources, read as a stream so memory stays flat whatever their size.

A source is a location: a ``.jsonl``/``.ndjson``, ``.csv`` or ``.json`` file,
a directory of such files (one source; files read in name order), or an
HTTP(S) URL answering a JSON array or ``{"tasks": [...]}`` (a URL whose path
ends in ``.jsonl``/``.ndjson`` or ``.csv`` is read as that format).

``open_source(location)`` returns a Source; ``source.records()`` yields
``(label, position, data, error)``: ``label`` and ``position`` locate the
record for a report ("line" 12, "b.csv line" 3, "item" 7), ``data`` is the raw mapping (or any
JSON value; records.validate() judges it) and ``error`` a reason when the
record could not even be parsed. A fault that makes the rest of the source
unreadable (missing file, HTTP error, broken JSON array) raises SourceError.
"""

import codecs
import csv
import http.client
import io
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

from django.conf import settings

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)
JSON_SUFFIXES = (".json",)
SUFFIXES = JSONL_SUFFIXES + CSV_SUFFIXES + JSON_SUFFIXES
CHUNK = 64 * 1024
MAX_RECORD_BYTES = 64 * 1024 * 1024  # one JSON array item; more means a broken stream
HTTP_TIMEOUT_SECONDS = 60


class SourceError(Exception):
    """The source cannot be read (as a whole or from some point on)."""


# --- formats (each reads a binary stream) ---------------------------------------


_decode_json = json.JSONDecoder().raw_decode


def jsonl_records(stream, label=""):
    line_label = f"{label} line" if label else "line"
    decode = _decode_json
    for number, raw in enumerate(stream, 1):
        try:
            line = raw.decode()
            data, end = decode(line)
            if end != len(line) and not line[end:].isspace():
                raise json.JSONDecodeError("Extra data", line, end)
        except ValueError as error:
            # Not UTF-8 (UnicodeDecodeError) or not JSON: a bad line, not a bad source.
            if not raw.strip():
                continue  # a blank line
            if raw[:1].isspace() and not isinstance(error, UnicodeDecodeError):
                try:  # raw_decode refuses leading blanks
                    data = json.loads(raw)
                except ValueError as again:
                    error = again
                else:
                    yield line_label, number, data, None
                    continue
            yield line_label, number, None, f"invalid JSON: {error}"
            continue
        yield line_label, number, data, None


def _raise_csv_limit():
    limit = max(csv.field_size_limit(), settings.MAX_PROMPT_CHARS * 4 + 1024)
    csv.field_size_limit(min(limit, sys.maxsize))


def csv_records(stream, label=""):
    """CSV with a header row; columns other than the record's keys go into metadata."""
    _raise_csv_limit()
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    line_label = f"{label} line" if label else "line"
    reader = csv.reader(text)
    header = _csv_header(reader, label or "CSV")
    if header is None:
        return
    width = len(header)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield line_label, start, None, f"bad CSV: {error}"
            continue
        except UnicodeDecodeError as error:
            raise SourceError(f"{label or 'CSV'} line {start}: not UTF-8 text ({error})") from None
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) > width:
            yield line_label, start, None, f"{len(row)} fields but the header has {width}"
            continue
        yield line_label, start, dict(zip(header, row, strict=False)), None


def _csv_header(reader, label):
    """The header's column names, checked; None for an empty file."""
    try:
        header = next(reader)
    except StopIteration:
        return None
    except (csv.Error, UnicodeDecodeError) as error:
        raise SourceError(f"{label}: unreadable header: {error}") from None
    header = [name.strip() for name in header]
    if "id" not in header or "prompt" not in header:
        raise SourceError(f"{label}: the header needs 'id' and 'prompt' columns (found {header})")
    if len(set(header)) != len(header):
        raise SourceError(f"{label}: duplicate column names in the header")
    return header


class _JsonStream:
    """Incremental reader of one JSON document from a binary stream."""

    def __init__(self, stream, label):
        self.stream = stream
        self.label = label or "JSON"
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.json = json.JSONDecoder()
        self.buffer = ""
        self.pos = 0
        self.eof = False

    def fail(self, message):
        raise SourceError(f"{self.label}: {message}")

    def _fill(self, size=None):
        if self.eof:
            return False
        try:
            chunk = self.stream.read(size or CHUNK)
            text = self.decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as error:
            self.fail(f"not UTF-8 text ({error})")
        except (OSError, http.client.HTTPException) as error:
            self.fail(f"read failed: {error!r}")
        if not chunk:
            self.eof = True
        if self.pos > CHUNK:
            self.buffer = self.buffer[self.pos :]
            self.pos = 0
        self.buffer += text
        return bool(chunk) or bool(text)

    def peek(self):
        """The next non-blank character ('' at the end)."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self._fill():
                return ""

    def expect(self, characters):
        found = self.peek()
        if found == "" or found not in characters:
            self.fail(f"expected {' or '.join(repr(c) for c in characters)}, found {found or 'the end'!r}")
        self.pos += 1
        return found

    def value(self):
        """Decode the next value; the stream must hold at least one more
        character after it (a number cut at a chunk's edge would parse)."""
        self.peek()
        size = CHUNK
        while True:
            try:
                value, end = self.json.raw_decode(self.buffer, self.pos)
                if end < len(self.buffer) or self.eof:
                    self.pos = end
                    return value
            except json.JSONDecodeError as error:
                if self.eof:
                    self.fail(f"invalid JSON: {error}")
            if len(self.buffer) - self.pos > MAX_RECORD_BYTES:
                self.fail(f"a value larger than {MAX_RECORD_BYTES} bytes")
            self._fill(size)
            size = min(size * 2, 8 * 1024 * 1024)

    def items(self):
        """Yield the items of the array at the current position."""
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield self.value()
            if self.expect(",]") == "]":
                return


def json_records(stream, label=""):
    """A JSON array of records, or an object whose "tasks" key holds one."""
    reader = _JsonStream(stream, label)
    item_label = f"{label} item" if label else "item"
    first = reader.peek()
    if first == "[":
        items = reader.items()
    elif first == "{":
        items = _tasks_member(reader)
    else:
        reader.fail('expected a JSON array or an object with a "tasks" array')
    for number, data in enumerate(items, 1):
        yield item_label, number, data, None
    if reader.peek() != "":
        reader.fail("unexpected data after the JSON document")


def _tasks_member(reader):
    reader.expect("{")
    found = False
    if reader.peek() == "}":
        reader.pos += 1
    else:
        while True:
            key = reader.value()
            if not isinstance(key, str):
                reader.fail("an object key must be a string")
            reader.expect(":")
            if key == "tasks" and not found:
                if reader.peek() != "[":
                    reader.fail('"tasks" must be an array')
                found = True
                yield from reader.items()
            else:
                reader.value()  # another member: skipped
            if reader.expect(",}") == "}":
                break
    if not found:
        reader.fail('the JSON object has no "tasks" array')


def _format_for(name):
    lowered = name.lower()
    if lowered.endswith(JSONL_SUFFIXES):
        return jsonl_records
    if lowered.endswith(CSV_SUFFIXES):
        return csv_records
    if lowered.endswith(JSON_SUFFIXES):
        return json_records
    return None


# --- locations -------------------------------------------------------------------


def _stem(name):
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name.rsplit(".", 1)[0] if "." in name.strip(".") else name


class Source:
    kind = ""

    def __init__(self, location, name):
        self.location = location
        self.name = name  # the default source name (the base name without extension)

    def records(self):
        raise NotImplementedError

    def __str__(self):
        return f"{self.kind} {self.location}"


class FileSource(Source):
    kind = "file"

    def __init__(self, path):
        path = Path(path)
        self.reader = _format_for(path.name)
        if self.reader is None:
            raise SourceError(f"{path}: unknown file type (use {', '.join(SUFFIXES)})")
        super().__init__(str(path), _stem(path.name))
        self.path = path

    def records(self, label=""):
        try:
            stream = open(self.path, "rb")  # noqa: SIM115 - closed below, also when the generator is dropped
        except OSError as error:
            raise SourceError(f"{self.path}: {error.strerror or error}") from None
        with stream:
            yield from self.reader(stream, label)


class DirectorySource(Source):
    kind = "directory"

    def __init__(self, path):
        path = Path(path)
        super().__init__(str(path), path.resolve().name)
        self.path = path

    def files(self):
        try:
            entries = sorted(self.path.iterdir())
        except OSError as error:
            raise SourceError(f"{self.path}: {error.strerror or error}") from None
        return [
            entry for entry in entries if not entry.name.startswith(".") and _format_for(entry.name) and entry.is_file()
        ]

    def records(self):
        for path in self.files():
            yield from FileSource(path).records(label=path.name)


class UrlSource(Source):
    kind = "url"

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(f"{_safe_url(url)}: not an http(s) URL")
        base = PurePosixPath(urllib.parse.unquote(parts.path)).name
        super().__init__(url, _stem(base) if base else parts.hostname)
        self.reader = _format_for(base) or json_records

    def __str__(self):
        return f"url {_safe_url(self.location)}"

    def records(self):
        request = urllib.request.Request(
            self.location,
            headers={"Accept": "application/json, application/x-ndjson, text/csv", "User-Agent": "eval-sync/1"},
        )
        shown = _safe_url(self.location)
        try:
            response = urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS)
        except urllib.error.HTTPError as error:
            raise SourceError(f"{shown}: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise SourceError(f"{shown}: {getattr(error, 'reason', error)}") from None
        with response:
            try:
                yield from self.reader(response)
            except (OSError, http.client.HTTPException) as error:  # connection cut, timeout
                raise SourceError(f"{shown}: read failed: {error!r}") from None


def _safe_url(url):
    """The URL without credentials or query string (which may hold a token)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def open_source(location):
    """The Source for a path or URL (SourceError if there is none)."""
    location = str(location).strip()
    if not location:
        raise SourceError("no task source given")
    if "://" in location:
        return UrlSource(location)
    path = Path(location).expanduser()
    if path.is_dir():
        return DirectorySource(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    return FileSource(path)
