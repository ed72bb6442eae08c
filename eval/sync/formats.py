"""Record formats of a task source, each read from a binary stream as
``(label, position, data, error)`` tuples (see sources.py): JSON Lines, CSV
with a header row, and one JSON document (an array or ``{"tasks": [...]}``)."""

import codecs
import csv
import http.client
import io
import json
import sys

from django.conf import settings

CHUNK = 64 * 1024
MAX_RECORD_BYTES = 64 * 1024 * 1024  # one JSON array item; more means a broken stream


class SourceError(Exception):
    """The source cannot be read (as a whole or from some point on)."""


class SyncInterrupted(Exception):
    """A stop was asked while reading or between two batches (nothing is marked missing)."""


# --- formats (each reads a binary stream) ---------------------------------------


_decode_json = json.JSONDecoder().raw_decode


def jsonl_records(stream, label=""):
    line_label = f"{label} line" if label else "line"
    decode = _decode_json
    for number, raw in enumerate(stream, 1):
        try:
            line = raw.decode().rstrip("\r\n")  # the line's end is not part of its JSON
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
            yield line_label, number, None, f"invalid JSON: {_json_error(error)}"
            continue
        yield line_label, number, data, None


def _json_error(error):
    """A line's JSON error by its column: the decoder's "line 1" would contradict the
    file's line number beside it."""
    if isinstance(error, json.JSONDecodeError):
        where = "column" if error.msg.endswith(" at") else "at column"  # "Unterminated string starting at"
        return f"{error.msg} {where} {error.colno}"
    return str(error)


def _raise_csv_limit():
    limit = max(csv.field_size_limit(), settings.MAX_PROMPT_CHARS * 4 + 1024)
    csv.field_size_limit(min(limit, sys.maxsize))


def csv_records(stream, label="", mapping=None):
    """CSV with a header row; columns other than the record's keys go into metadata.
    ``mapping`` ({"id": column, "prompt": column, ...}) names the columns that hold
    the record's keys when the header calls them otherwise."""
    _raise_csv_limit()
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    line_label = f"{label} line" if label else "line"
    # strict: a quote left open is an error, not a field that swallows the rows after it
    reader = csv.reader(text, strict=True)
    header = _csv_header(reader, label or "CSV", mapping)
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
            raise SourceError(_csv_error(label, start, reader.line_num, error)) from None
        except UnicodeDecodeError as error:
            raise SourceError(f"{label or 'CSV'} line {start}: not UTF-8 text ({error})") from None
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) > width:
            yield line_label, start, None, f"{len(row)} fields but the header has {width}"
            continue
        yield line_label, start, dict(zip(header, row, strict=False)), None


def _csv_error(label, start, end, error):
    """A row the parser gave up on: where its rows cannot be told apart any more
    the whole source fails (a row skipped there would mark the rows it swallowed missing)."""
    where = f"{label} line {start}" if label else f"line {start}"
    if str(error) == "unexpected end of data":
        return f"{where}: bad CSV: a quoted field opened on this row is never closed (the file ends at line {end})"
    if "expected after" in str(error):
        return f"{where}: bad CSV: a quoted field opened on this row is not closed properly ({error}, line {end})"
    return f"{where}: bad CSV: {error}"


def _csv_header(reader, label, mapping=None):
    """The header's column names (as record keys, after ``mapping``), checked; None for an empty file."""
    try:
        header = next(reader)
    except StopIteration:
        return None
    except (csv.Error, UnicodeDecodeError) as error:
        raise SourceError(f"{label}: unreadable header: {error}") from None
    header = [name.strip() for name in header]
    if len(set(header)) != len(header):
        raise SourceError(f"{label}: duplicate column names in the header")
    if mapping:
        header = _mapped(header, mapping, label)
    if "id" not in header or ("prompt" not in header and "messages" not in header):
        raise SourceError(f"{label}: the header needs 'id' and 'prompt' (or 'messages') columns (found {header})")
    return header


def _mapped(header, mapping, label):
    """The header with the mapped columns renamed to the record keys they hold."""
    missing = [column for column in mapping.values() if column not in header]
    if missing:
        raise SourceError(f"{label}: the mapping names column(s) the header lacks: {', '.join(map(repr, missing))}")
    renamed = {column: key for key, column in mapping.items()}
    clashes = [name for name in header if name in mapping and renamed.get(name) != name]
    if clashes:
        raise SourceError(
            f"{label}: column(s) {', '.join(map(repr, clashes))} would clash with the mapping; map or rename them"
        )
    return [renamed.get(name, name) for name in header]


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
        self.line = 1  # the line number at ``line_mark`` in the buffer
        self.line_mark = 0

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
            self.line_at(self.pos)
            self.buffer = self.buffer[self.pos :]
            self.pos = self.line_mark = 0
        self.buffer += text
        return bool(chunk) or bool(text)

    def line_at(self, pos):
        """The line number of ``pos`` in the buffer (positions asked never go back)."""
        self.line += self.buffer.count("\n", self.line_mark, pos)
        self.line_mark = pos
        return self.line

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
        """Yield (line, item) for the items of the array at the current position."""
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            self.peek()
            line = self.line_at(self.pos)
            yield line, self.value()
            if self.expect(",]") == "]":
                return


def json_records(stream, label="", *, keys=("tasks",), by_line=False, extra=None):
    """A JSON array of records, or an object whose "tasks" key (or another of
    ``keys``) holds one. Records are numbered as items, or ``by_line`` by the
    line they start on; ``extra`` (a dict) receives the object's other members."""
    reader = _JsonStream(stream, label)
    item_label = f"{label} {'line' if by_line else 'item'}".strip()
    first = reader.peek()
    if first == "[":
        items = reader.items()
    elif first == "{":
        items = _records_member(reader, keys, extra)
    else:
        reader.fail(f'expected a JSON array or an object with a "{keys[0]}" array')
    for number, (line, data) in enumerate(items, 1):
        yield item_label, line if by_line else number, data, None
    if reader.peek() != "":
        reader.fail("unexpected data after the JSON document")


def _records_member(reader, keys, extra):
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
            if key in keys and not found:
                if reader.peek() != "[":
                    reader.fail(f'"{key}" must be an array')
                found = True
                yield from reader.items()
            else:
                value = reader.value()  # another member: skipped, or kept for the caller
                if extra is not None:
                    extra[key] = value
            if reader.expect(",}") == "}":
                break
    if not found:
        reader.fail(f'the JSON object has no "{keys[0]}" array')
