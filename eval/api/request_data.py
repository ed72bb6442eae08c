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

The rules on text and ids are eval/storable.py's; the HTML pages (eval/pages)
refuse the same query strings through it, with a 400 page.
"""

import json
import math

from eval import storable
from eval.api.errors import invalid
from eval.storable import BIGINT_MAX, UNSTORABLE, UNSTORABLE_TEXT

MAX_JSON_DEPTH = 100
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
            raise invalid(f"{field or 'the request body'} is an integer beyond 64 bits", storable.printable(field))


def _check_depth(depth):
    if depth > MAX_JSON_DEPTH:
        raise invalid(TOO_DEEP)


def _check_text(text, path):
    if UNSTORABLE.search(text):
        field = ".".join(path) if path else None
        raise invalid(f"{field or 'the request body'} holds {UNSTORABLE_TEXT}", storable.printable(field))


def check_query(query):
    """Every name and value of a query string (a QueryDict), read or not by the endpoint."""
    try:
        storable.check_query(query)
    except storable.Unstorable as refused:
        raise invalid(refused.message, refused.field) from None
