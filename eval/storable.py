"""What the database can take from a request, for the API and the pages alike:
text without NUL (PostgreSQL text and jsonb cannot store it) or a lone
surrogate (``"\\ud800"`` has no UTF-8 spelling), and ids within a bigint.
A value that fails raises ``Unstorable``; the API answers it with a 400
``invalid`` (eval/api/request_data.py), a page with its 400 page
(eval/pages/common.py)."""

import re

BIGINT_MAX = 2**63 - 1  # PostgreSQL bigint; SQLite's integers are as wide
# NUL: PostgreSQL text cannot hold it; a lone surrogate cannot be encoded to UTF-8.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_TEXT = "a NUL character or a lone surrogate (text must be valid Unicode without NUL)"


class Unstorable(ValueError):
    """A value the database cannot take; ``message`` says why and echoes no hostile text."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


def printable(name):
    """A field name safe to send back (a bad key is not echoed as it came)."""
    return None if name is None else UNSTORABLE.sub("\ufffd", name)


def check_query(query):
    """Every name and value of a query string (a QueryDict), read or not by the endpoint."""
    for name, values in query.lists():
        if UNSTORABLE.search(name) or any(UNSTORABLE.search(value) for value in values):
            field = printable(name)
            raise Unstorable(f"{field} holds {UNSTORABLE_TEXT}", field)


def query_integer(text, field):
    """A query string's id (a cursor, a run id) as an int: None when ``text`` is not
    ASCII digits (a page ignores it); ``Unstorable`` beyond ``BIGINT_MAX``."""
    if not (text.isascii() and text.isdigit()):  # str.isdigit() alone takes "²", which int() refuses
        return None
    digits = text.lstrip("0") or "0"
    # Length first: int() refuses to read more than 4300 digits (ValueError).
    if len(digits) > len(str(BIGINT_MAX)) or int(digits) > BIGINT_MAX:
        raise Unstorable(f"{field} is beyond the largest id the database holds ({BIGINT_MAX})", field)
    return int(digits)
