"""One task record from a source: validation and its content hash.

A record is a mapping with ``id`` (required, becomes ``external_id``),
``prompt`` (required unless ``messages`` is given), ``messages`` (a
conversation: ``[{"role": "system"|"user"|"assistant", "content": str}]``,
at most one ``system`` turn and only first, the last turn ``user``; a
conversation's ``prompt`` defaults to its last user turn), ``title``,
``reference`` and ``metadata`` (a JSON object). Any other key (e.g. an
extra CSV column) goes into ``metadata``; a key given in ``metadata`` itself
wins over an extra column of that name. (Callers that take more keys, the
uploads' ``outputs``, remove them before ``validate``.)
"""

import hashlib
import json
from typing import NamedTuple

from django.conf import settings

from eval.models import prompt_fingerprint

KNOWN_KEYS = frozenset({"id", "prompt", "messages", "title", "reference", "metadata"})
ROLES = ("system", "user", "assistant")
MAX_EXTERNAL_ID = 200  # Task.external_id max_length
MAX_TITLE = 500  # Task.title max_length


class InvalidRecord(ValueError):
    """The record is skipped; the message says why."""


class TaskRecord(NamedTuple):
    external_id: str
    title: str
    prompt: str
    reference: str
    metadata: dict
    metadata_json: str  # canonical (sorted keys): what is hashed and stored
    content_hash: str
    prompt_hash: str  # what judgements pin (eval.models.prompt_fingerprint)
    messages: list | None = None  # a conversation, or None
    messages_json: str | None = None  # canonical: what is stored (None: SQL NULL)


def record_id(data):
    """The record's id as text when it has a usable one (else None)."""
    if isinstance(data, dict):
        value = data.get("id")
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.strip() and len(value) <= MAX_EXTERNAL_ID:
            return value
    return None


_encoder = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _make_canonical_json():
    """The canonical (sorted keys, compact) encoder. JSONEncoder.encode builds
    a C encoder on every call; build it once when the C accelerator exists
    (parsed JSON cannot be circular, so no markers are needed)."""
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    c_encode_basestring = getattr(json.encoder, "c_encode_basestring", None)
    if c_make_encoder is None or c_encode_basestring is None:
        return _encoder.encode
    encode = c_make_encoder(None, _encoder.default, c_encode_basestring, None, ":", ",", True, False, False)
    join = "".join
    return lambda value: join(encode(value, 0))


_encode_json = _make_canonical_json()


def _text(data, key, *, required=False, limit=None):
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise InvalidRecord(f"missing {key!r}")
        return ""
    if type(value) is not str:
        raise InvalidRecord(f"{key!r} must be a string, not {type(value).__name__}")
    if required and value.isspace():
        raise InvalidRecord(f"{key!r} is blank")
    if limit is not None and len(value) > limit:
        raise InvalidRecord(f"{key!r} is longer than {limit} characters")
    if "\x00" in value:
        raise InvalidRecord(f"{key!r} contains a NUL character")
    return value


def _metadata(data):
    value = data.get("metadata")
    if value is None or value == "":
        metadata = {}
    elif type(value) is dict:
        metadata = value
    elif isinstance(value, str):  # a CSV column holding JSON
        try:
            metadata = json.loads(value)
        except ValueError as error:
            raise InvalidRecord(f"'metadata' is not valid JSON: {error}") from None
        if not isinstance(metadata, dict):
            raise InvalidRecord("'metadata' must be a JSON object")
    else:
        raise InvalidRecord(f"'metadata' must be a JSON object, not {type(value).__name__}")
    if not data.keys() <= KNOWN_KEYS:
        extra = {key: value for key, value in data.items() if key not in KNOWN_KEYS and value is not None}
        if extra:
            metadata = {**extra, **metadata}
    return metadata


def content_hash(external_id, title, prompt, reference, metadata_json, messages_json=None):
    """SHA-256 over the record's fields, each prefixed by its length (so no
    separator can be forged): equal content, equal hash. Cheap enough to
    compute for every record of every pass. A conversation is appended only
    when there is one, so a record without one keeps the hash it always had
    (a sync after an upgrade rewrites nothing)."""
    canonical = (
        f"{len(external_id)}:{external_id}{len(title)}:{title}{len(prompt)}:{prompt}"
        f"{len(reference)}:{reference}{len(metadata_json)}:{metadata_json}"
    )
    if messages_json is not None:
        canonical += f"m{len(messages_json)}:{messages_json}"
    try:
        return hashlib.sha256(canonical.encode()).hexdigest()
    except UnicodeEncodeError:
        raise InvalidRecord("the record holds text that is not valid Unicode (a lone surrogate)") from None


def _turn(number, turn, last):
    """One message of a conversation as (role, content), checked."""
    if type(turn) is not dict:
        raise InvalidRecord(f"'messages' item {number}: not an object with 'role' and 'content'")
    role, content = turn.get("role"), turn.get("content")
    if role not in ROLES:
        raise InvalidRecord(f"'messages' item {number}: 'role' must be one of {', '.join(ROLES)} (found {role!r})")
    if type(content) is not str or not content.strip():
        raise InvalidRecord(f"'messages' item {number}: 'content' must be a non-blank string")
    if "\x00" in content:
        raise InvalidRecord(f"'messages' item {number}: 'content' contains a NUL character")
    if not turn.keys() <= {"role", "content"}:
        extra = sorted(turn.keys() - {"role", "content"})
        raise InvalidRecord(f"'messages' item {number}: unknown key(s) {', '.join(map(repr, extra))}")
    if role == "system" and number != 1:
        raise InvalidRecord(f"'messages' item {number}: a 'system' message may only come first (and once)")
    if number == last and role != "user":
        raise InvalidRecord(f"'messages': the last message must be 'user' (item {number} is {role!r})")
    return role, content


def _messages(data):
    """A conversation: (messages as stored, canonical JSON), or (None, None) without one."""
    value = data.get("messages")
    if value is None or value == "":
        return None, None
    if isinstance(value, str):  # a CSV column holding JSON
        try:
            value = json.loads(value)
        except ValueError as error:
            raise InvalidRecord(f"'messages' is not valid JSON: {error}") from None
    if type(value) is not list or not value:
        raise InvalidRecord("'messages' must be a non-empty list of {'role', 'content'} objects")
    last = len(value)
    turns = [_turn(number, turn, last) for number, turn in enumerate(value, 1)]
    if sum(len(content) for _, content in turns) > settings.MAX_PROMPT_CHARS:
        raise InvalidRecord(f"'messages' hold more than {settings.MAX_PROMPT_CHARS} characters")
    messages = [{"role": role, "content": content} for role, content in turns]
    return messages, _encode_json(messages)


def _prompt(data, messages):
    """The record's prompt; a conversation's defaults to its last (user) turn."""
    if messages is None or data.get("prompt") not in (None, ""):
        return _text(data, "prompt", required=True, limit=settings.MAX_PROMPT_CHARS)
    return messages[-1]["content"]


def validate(data):
    """A TaskRecord from a raw mapping, or InvalidRecord."""
    if type(data) is not dict:
        raise InvalidRecord(f"not a JSON object ({type(data).__name__})")
    external_id = _external_id(data)
    messages, messages_json = _messages(data)
    prompt = _prompt(data, messages)
    title = _text(data, "title", limit=MAX_TITLE)
    reference = _text(data, "reference")
    metadata = _metadata(data)
    try:
        metadata_json = _encode_json(metadata) if metadata else "{}"
    except ValueError:  # NaN or Infinity, which PostgreSQL's jsonb refuses
        raise InvalidRecord("'metadata' holds NaN or Infinity, which JSON does not allow") from None
    if "\\u0000" in metadata_json:  # PostgreSQL's jsonb refuses NUL
        raise InvalidRecord("'metadata' contains a NUL character")
    digest = content_hash(external_id, title, prompt, reference, metadata_json, messages_json)
    return TaskRecord(
        external_id,
        title,
        prompt,
        reference,
        metadata,
        metadata_json,
        digest,
        prompt_fingerprint(prompt, reference, messages),
        messages,
        messages_json,
    )


def _external_id(data):
    raw_id = data.get("id")
    if raw_id is None or raw_id == "":
        raise InvalidRecord("missing 'id'")
    if type(raw_id) is str:
        external_id = raw_id
    elif type(raw_id) is int:
        external_id = str(raw_id)
    else:
        raise InvalidRecord(f"'id' must be a string or an integer, not {type(raw_id).__name__}")
    if external_id.isspace():
        raise InvalidRecord("'id' is blank")
    if len(external_id) > MAX_EXTERNAL_ID:
        raise InvalidRecord(f"'id' is longer than {MAX_EXTERNAL_ID} characters")
    if "\x00" in external_id:
        raise InvalidRecord("'id' contains a NUL character")
    return external_id
