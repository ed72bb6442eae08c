"""What the API takes from a request, checked once before any view, model or
database sees it: a hostile value is a 400 ``invalid``, never a 500.

- JSON bodies: ``parse_json_body`` is django-ninja's parser (eval/api/app.py)
  and the one any plain view that reads a body must use. At most
  ``MAX_JSON_DEPTH`` levels of arrays and objects (deeper input would exhaust
  the stack: RecursionError); only finite numbers (``NaN``, ``Infinity`` and
  ``1e400`` are not JSON numbers a database column or jsonb can hold).
- Text, in bodies (keys too) and query strings (``check_query``, at both front
  doors: eval/api/auth.py): no NUL character (PostgreSQL text and jsonb cannot
  store it) and no lone surrogate (``"\\ud800"``: it has no UTF-8 spelling).
- Integers the database compares or stores are bounded by their types in
  eval/api/schemas.py (``BIGINT_MAX``).

The HTML pages (eval/pages.py) refuse the same query strings, with a 400 page:
``check_query`` for every name and value, ``query_integer`` for the ids they read.
"""

import json
import math
import re

from eval.api.errors import invalid

MAX_JSON_DEPTH = 100
BIGINT_MAX = 2**63 - 1  # PostgreSQL bigint; SQLite's integers are as wide
# NUL: PostgreSQL text cannot hold it; a lone surrogate cannot be encoded to UTF-8.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_TEXT = "a NUL character or a lone surrogate (text must be valid Unicode without NUL)"
TOO_DEEP = f"the request body is nested too deeply (at most {MAX_JSON_DEPTH} levels of arrays and objects)"


def parse_json_body(raw):
    """The request body's JSON value, or ApiError ``invalid``."""
    try:
        data = json.loads(raw, parse_constant=_not_a_number, parse_float=_finite)
    except RecursionError:
        raise invalid(TOO_DEEP) from None
    except ValueError:  # also UnicodeDecodeError: the body is not UTF-8
        raise invalid("the request body is not valid JSON") from None
    _check_tree(data)
    return data


def _not_a_number(constant):
    raise invalid(f"{constant} is not a JSON number")


def _finite(text):
    number = float(text)
    if not math.isfinite(number):
        raise invalid(f"the number {text[:30]} is out of range")
    return number


def _check_tree(data):
    """Depth, text and integers of a parsed body (everywhere, drafts' free-form
    objects too), without recursion (its depth is what is checked)."""
    pending = [(data, 0, ())]
    while pending:
        value, depth, path = pending.pop()
        if isinstance(value, dict):
            _check_depth(depth + 1)
            for key, item in value.items():
                _check_text(key, path)
                pending.append((item, depth + 1, (*path, key)))
        elif isinstance(value, list):
            _check_depth(depth + 1)
            pending.extend((item, depth + 1, (*path, str(n))) for n, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, int) and not -BIGINT_MAX - 1 <= value <= BIGINT_MAX:
            field = ".".join(path) if path else None
            raise invalid(f"{field or 'the request body'} is an integer beyond 64 bits", _printable(field))


def _check_depth(depth):
    if depth > MAX_JSON_DEPTH:
        raise invalid(TOO_DEEP)


def _check_text(text, path):
    if UNSTORABLE.search(text):
        field = ".".join(path) if path else None
        raise invalid(f"{field or 'the request body'} holds {UNSTORABLE_TEXT}", _printable(field))


def _printable(name):
    """A field name safe to send back (a bad key is not echoed as it came)."""
    return None if name is None else UNSTORABLE.sub("\ufffd", name)


def check_query(query):
    """Every name and value of a query string (a QueryDict), read or not by the endpoint."""
    for name, values in query.lists():
        if UNSTORABLE.search(name) or any(UNSTORABLE.search(value) for value in values):
            field = _printable(name)
            raise invalid(f"{field} holds {UNSTORABLE_TEXT}", field)


def query_integer(text, field):
    """A query string's id (a cursor, a run id) as an int: None when ``text`` is not
    ASCII digits (a page ignores it); ApiError ``invalid`` beyond ``BIGINT_MAX``."""
    if not (text.isascii() and text.isdigit()):  # str.isdigit() alone takes "²", which int() refuses
        return None
    digits = text.lstrip("0") or "0"
    # Length first: int() refuses to read more than 4300 digits (ValueError).
    if len(digits) > len(str(BIGINT_MAX)) or int(digits) > BIGINT_MAX:
        raise invalid(f"{field} is beyond the largest id the database holds ({BIGINT_MAX})", field)
    return int(digits)
