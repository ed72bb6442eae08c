"""The two export formats, written a batch of rows at a time.

- JSONL: one compact JSON object per line (orjson), UTF-8. JSON
  escapes every control character; the three other characters that
  ``str.splitlines()`` breaks on (U+0085, U+2028, U+2029) are escaped too,
  so a line is a row whichever way a reader splits.
- CSV: RFC 4180 (``\\r\\n``, quotes where needed), a header row, UTF-8 with a
  byte-order mark (a spreadsheet then reads the text as UTF-8, not the
  locale's code page). Nested values are JSON text, ``None`` an empty cell,
  booleans ``true``/``false``. A text cell a spreadsheet would run as a
  formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
  return: OWASP "CSV injection") gets a leading ``'``, which spreadsheets
  show as nothing. A cell that starts with ``'`` itself gets one more, so
  the escape is undone exactly: drop the first character of any cell that
  starts with ``'`` (``unescape_cell``).
"""

import json

import orjson

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
_FORMULA_FIRST = frozenset(FORMULA_START)
BOM = "\ufeff"
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
# One encoder each, made once: json.dumps() with options builds a new one per call.
_line = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_nested = json.JSONEncoder(ensure_ascii=False).encode
_dumps, _Fragment, _EncodeError = orjson.dumps, orjson.Fragment, orjson.JSONEncodeError


def escape_cell(text):
    return "'" + text if text[:1] in _FORMULA_FIRST else text


def unescape_cell(text):
    """A CSV cell's text as exported, before the formula escape."""
    return text[1:] if text.startswith("'") else text


def cell(value):
    """One value as CSV cell text. The common types first, by class: this runs
    for every cell of the export."""
    kind = value.__class__
    if kind is str:
        return "'" + value if value[:1] in _FORMULA_FIRST else value
    if kind is int:  # not bool: its class is bool
        return str(value)
    if value is None:
        return ""
    if kind is dict or kind is list:  # JSON text starting with { or [: never a formula
        return _nested(value) if value else ("{}" if kind is dict else "[]")
    if kind is bool:
        return "true" if value else "false"
    if kind is float:
        return repr(value)
    return escape_cell(value if isinstance(value, str) else _nested(value))


def _escape_breaks(text):
    if not text.isascii():
        for raw, escaped in _LINE_BREAKS.items():
            text = text.replace(raw, escaped)
    return text


def json_line(row):
    return _escape_breaks(_line(row)) + "\n"


def _row_bytes(row):
    """One row (a dict) as compact JSON bytes: orjson, or the standard encoder
    for what orjson refuses (an integer past 64 bits, a key neither text nor None)."""
    try:
        return _dumps(row, option=orjson.OPT_NON_STR_KEYS)
    except _EncodeError:
        return _line({k: json.loads(v.contents) if v.__class__ is _Fragment else v for k, v in row.items()}).encode()


class Jsonl:
    """Rows are tuples in column order; ``raw`` columns hold JSON text, written as is."""

    extension = "jsonl"
    content_type = "application/x-ndjson; charset=utf-8"

    def __init__(self, columns, raw=()):
        self.columns = columns
        self.raw = tuple(raw)

    def header(self):
        return ""

    def _dicts(self, rows):
        columns, raw = self.columns, self.raw
        for row in rows:
            named = dict(zip(columns, row, strict=True))
            for name in raw:
                if named[name] is not None:  # SQL NULL: null
                    named[name] = _Fragment(named[name])
            yield named

    def batch(self, rows):
        # One pass over the batch's text: joined as bytes, decoded once, line breaks escaped once.
        return _escape_breaks(b"\n".join(map(_row_bytes, self._dicts(rows))).decode()) + "\n"


def _quoted(text):
    """A cell's text as a CSV field: quoted, quotes doubled, when it holds a
    quote, a comma or a line break (what csv.writer's QUOTE_MINIMAL quotes)."""
    if '"' in text:
        return '"' + text.replace('"', '""') + '"'
    if "," in text or "\n" in text or "\r" in text:
        return '"' + text + '"'
    return text


def _field(value):
    """One value as a CSV field; the common classes first (this runs for every cell)."""
    kind = value.__class__
    if kind is str:
        return _quoted("'" + value if value[:1] in _FORMULA_FIRST else value)
    if kind is int or value is None:
        return "" if value is None else str(value)
    return _quoted(cell(value))


class Csv:
    """Rows are tuples in column order. Written with str methods rather than
    csv.writer (a third of the CSV export's time went to it, measured); the
    same fields csv.writer(lineterminator="\\r\\n") writes."""

    extension = "csv"
    content_type = "text/csv; charset=utf-8"

    def __init__(self, columns, raw=()):
        # Raw JSON text cells are text cells: the formula escape applies to them too.
        self.columns = columns

    def header(self):
        return BOM + ",".join(map(_quoted, self.columns)) + "\r\n"

    def batch(self, rows):
        return "".join([",".join(map(_field, row)) + "\r\n" for row in rows])


FORMATS = {"jsonl": Jsonl, "csv": Csv}
