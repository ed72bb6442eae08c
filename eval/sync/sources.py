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
unreadable (missing file, HTTP error, broken JSON array, a URL past its
deadline or size cap: fetch.py) raises SourceError.
"""

import urllib.parse
from pathlib import Path, PurePosixPath

from eval.sync.fetch import open_url
from eval.sync.formats import SourceError, SyncInterrupted, csv_records, json_records, jsonl_records

__all__ = ["SourceError", "SyncInterrupted", "csv_records", "json_records", "jsonl_records", "open_source"]

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)
JSON_SUFFIXES = (".json",)
SUFFIXES = JSONL_SUFFIXES + CSV_SUFFIXES + JSON_SUFFIXES


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

    def __init__(self, url, should_stop=None):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(f"{_safe_url(url)}: not an http(s) URL")
        base = PurePosixPath(urllib.parse.unquote(parts.path)).name
        super().__init__(url, _stem(base) if base else parts.hostname)
        self.reader = _format_for(base) or json_records
        self.should_stop = should_stop

    def __str__(self):
        return f"url {_safe_url(self.location)}"

    def records(self):
        # Within SYNC_FETCH_TIMEOUT_SECONDS and SYNC_FETCH_MAX_BYTES; a stop request ends it at once.
        with open_url(self.location, shown=_safe_url(self.location), should_stop=self.should_stop) as body:
            yield from self.reader(body)


def _safe_url(url):
    """The URL without credentials or query string (which may hold a token)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def open_source(location, should_stop=None):
    """The Source for a path or URL (SourceError if there is none); a URL's
    fetch checks ``should_stop`` while it waits (SyncInterrupted)."""
    location = str(location).strip()
    if not location:
        raise SourceError("no task source given")
    if "://" in location:
        return UrlSource(location, should_stop)
    path = Path(location).expanduser()
    if path.is_dir():
        return DirectorySource(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    return FileSource(path)
