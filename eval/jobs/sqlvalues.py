"""Values in and out of the engine's raw SQL, the same on PostgreSQL and SQLite.

The hot statements (claims, batched progress and final writes) are raw SQL:
building one ORM update per job costs ~0.8 ms of Python, and a worker with
200 jobs in flight would spend a good part of a core on that.
"""

import json
import uuid
from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone


def as_uuid(value):
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def uuid_param(value):
    """A job id as a statement parameter: a UUID on PostgreSQL, hex text on SQLite."""
    value = as_uuid(value)
    return value if connection.vendor == "postgresql" else value.hex


def as_datetime(value):
    """A timestamp read by raw SQL (SQLite gives text) as an aware datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def adapt(value):
    """A statement parameter as the backend stores it (datetimes)."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def as_json(value):
    """A JSON column read by raw SQL (SQLite gives text)."""
    return json.loads(value) if isinstance(value, str | bytes) else (value or {})
