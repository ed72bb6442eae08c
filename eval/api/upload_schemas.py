"""The shapes of ``/api/datasets`` (eval/api/datasets.py) for the OpenAPI schema."""

from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from eval.api.schemas import DATE_TIME, Body, ErrorDetail

RECORD_EXAMPLE = {"id": "q1", "prompt": "What is 2 + 2?", "reference": "4"}
CONVERSATION_EXAMPLE = {
    "id": "c1",
    "messages": [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Say hello."},
    ],
    "outputs": [{"label": "my-app-v1", "text": "Bonjour !"}],
}


class ImportQuery(Schema):
    dry_run: bool = Field(False, description="Check and preview only: nothing is written (200).")
    mode: Literal["append", "replace"] = Field(
        "append", description="replace: the dataset's tasks not in the file are marked missing."
    )
    format: Literal["jsonl", "csv", "json"] | None = Field(
        None, description="When the file name (or Content-Type) does not say it."
    )
    mapping: str | None = Field(
        None,
        description='CSV only, JSON text: which column holds what, e.g. {"id": "qid", "prompt": "question", '
        '"reference": "answer"}; other columns go to metadata.',
    )
    allow_mass_missing: bool = Field(False, description="replace: mark more than half of the tasks missing.")


class ImportBody(Body):
    """Records as JSON (instead of a multipart file); the query's options may also come here."""

    model_config = ConfigDict(
        strict=False, json_schema_extra={"examples": [{"records": [RECORD_EXAMPLE, CONVERSATION_EXAMPLE]}]}
    )

    records: list[dict[str, Any]] = Field(
        description="Each: id, prompt (or messages: [{role, content}], system first, the last user), "
        "title, reference, metadata, outputs: [{label, text}] (outputs produced elsewhere)."
    )
    dry_run: bool = False
    mode: Literal["append", "replace"] = "append"
    allow_mass_missing: bool = False


MULTIPART_BODY = {
    "schema": {
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary", "description": ".jsonl, .csv or .json"},
            "dry_run": {"type": "string", "enum": ["0", "1"]},
            "mode": {"type": "string", "enum": ["append", "replace"]},
            "format": {"type": "string", "enum": ["jsonl", "csv", "json"]},
            "mapping": {"type": "string", "description": "CSV: JSON text, as the query's mapping."},
        },
        "required": ["file"],
    }
}


class ImportError_(Schema):
    line: int | None = Field(description="The line (CSV: the row's first line) or null for the whole file.")
    message: str


class PreviewRow(Schema):
    id: str
    title: str
    prompt: str
    reference: str
    messages: list[dict[str, Any]] | None
    metadata: dict[str, Any]
    outputs: list[dict[str, Any]] | None = None
    action: Literal["add", "change", "restore", "unchanged"]


class ImportOut(Schema):
    version: int | None = Field(description="The version this import made (null: a dry run, or nothing changed).")
    added: int
    changed: int
    missing: int = Field(description="Tasks marked missing (replace).")
    unchanged: int
    restored: int = Field(description="Tasks that were missing and are back.")
    outputs: int = Field(description="Outputs produced elsewhere, new or changed.")
    errors: list[ImportError_]
    error_count: int
    preview: list[PreviewRow] | None = Field(None, description="A dry run: the first records as they will be stored.")


class ImportInvalidDetail(ErrorDetail):
    errors: list[ImportError_] | None = Field(None, description="A file with bad lines: each, with its line.")
    error_count: int | None = Field(None, description="Bad lines in all (the first 1,000 are listed).")
    preview: list[PreviewRow] | None = Field(None, description="The first good records, as they would be stored.")


class ImportInvalid(Schema):
    error: ImportInvalidDetail


class DatasetOut(Schema):
    name: str
    tasks: int = Field(description="Tasks present (not missing).")
    missing: int
    versions: int
    last_import_at: str | None = Field(json_schema_extra=DATE_TIME)


class DatasetList(Schema):
    datasets: list[DatasetOut]


class VersionOut(Schema):
    version: int
    created_at: str = Field(json_schema_extra=DATE_TIME)
    created_by: str | None
    mode: Literal["append", "replace"]
    file_name: str
    sha256: str
    added: int
    changed: int
    missing: int
    unchanged: int
    outputs: int


class VersionList(Schema):
    dataset: str
    versions: list[VersionOut]
