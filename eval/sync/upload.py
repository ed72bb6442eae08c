"""Dataset uploads (``POST /api/datasets/<name>/imports``, the /datasets/
page): a whole file checked before anything is written, then written in
batches. Unlike the sync daemon, which skips bad records and reports them,
an upload with any bad line imports nothing.

1. Check: every record is parsed and validated by the sync's own rules
   (records.py), ids must be unique, ``outputs`` well formed (outputs.py).
   Per batch of BATCH_SIZE, one SELECT of the existing rows' hashes says
   what each record would do (add, change, nothing, restore), and the rows
   to write are spooled to a temporary file (marshal): the write pass
   neither parses nor validates again, and memory holds one batch. Every
   error is counted, the first MAX_ERRORS kept with their line.
2. Unless the check found errors or it is a dry run: one transaction (an
   import lands whole or not at all; uploads into one dataset queue behind
   each other) writes the spooled batches with the sync's upsert, marks
   missing what a ``replace`` left out (under the sync's mass-missing guard,
   already checked in pass 1), writes the outputs and records the version.
"""

import hashlib
import marshal
import tempfile
import time
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from eval.models import LLMJob, Run, Task
from eval.sync import outputs as imported
from eval.sync.datasets import UploadRefused, check_dataset_name, record_version
from eval.sync.formats import SourceError, csv_records, json_records, jsonl_records
from eval.sync.importer import MASS_MISSING_FRACTION
from eval.sync.records import InvalidRecord, validate
from eval.sync.task_sql import TaskSql, refresh_statistics, stored

BATCH_SIZE = 2000
MAX_ERRORS = 1000
PREVIEW_ROWS = 10
FORMATS = ("jsonl", "csv", "json")
MODES = ("append", "replace")
MAPPED_KEYS = ("id", "prompt", "reference", "title", "messages", "metadata")
MARK_BATCH_SIZE = 500


@dataclass
class Upload:
    dataset: str
    path: str  # the uploaded file, on disk
    fmt: str  # jsonl | csv | json
    mode: str = "append"
    dry_run: bool = False
    mapping: dict | None = None  # CSV: {"id": column, "prompt": column, ...}
    file_name: str = ""
    sha256: str = ""
    user: object = None
    allow_mass_missing: bool = False


@dataclass
class Report:
    dataset: str
    dry_run: bool
    version: int | None = None
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    missing: int = 0
    restored: int = 0
    outputs: int = 0
    errors: list = field(default_factory=list)  # [{"line", "message"}], the first MAX_ERRORS
    error_count: int = 0
    preview: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changes(self):
        return self.added + self.changed + self.missing + self.restored + self.outputs

    def answer(self):
        body = {
            "version": self.version,
            "added": self.added,
            "changed": self.changed,
            "missing": self.missing,
            "unchanged": self.unchanged,
            "restored": self.restored,
            "outputs": self.outputs,
            "errors": self.errors,
            "error_count": self.error_count,
        }
        if self.dry_run or self.error_count:
            body["preview"] = self.preview
        return body


def check_mapping(upload):
    mapping = upload.mapping
    if not mapping:
        return
    if upload.fmt != "csv":
        raise UploadRefused("invalid", "a column mapping applies to CSV files only", "mapping")
    if not isinstance(mapping, dict) or not all(isinstance(v, str) and v for v in mapping.values()):
        raise UploadRefused("invalid", 'mapping must be an object {"id": column, "prompt": column, ...}', "mapping")
    unknown = sorted(set(mapping) - set(MAPPED_KEYS))
    if unknown:
        raise UploadRefused("invalid", f"mapping: unknown key(s) {unknown}; mappable: {list(MAPPED_KEYS)}", "mapping")
    if len(set(mapping.values())) != len(mapping):
        raise UploadRefused("invalid", "mapping: one column mapped twice", "mapping")


def import_upload(upload):
    """Check ``upload`` whole; write it unless it has errors or is a dry run.
    Returns a Report; raises UploadRefused (a mass missing is a conflict)."""
    started = time.monotonic()
    check_dataset_name(upload.dataset)
    check_mapping(upload)
    report = Report(upload.dataset, upload.dry_run)
    with tempfile.TemporaryFile(prefix="eval-upload-") as spool:
        check = _Check(upload, report, spool)
        check.run()
        if not report.error_count and not upload.dry_run:
            _write(upload, report, spool, check.seen)
    report.seconds = time.monotonic() - started
    return report


def _records(upload, stream):
    if upload.fmt == "jsonl":
        return jsonl_records(stream)
    if upload.fmt == "csv":
        return csv_records(stream, mapping=upload.mapping)
    return json_records(stream, keys=("records", "tasks"), by_line=True)


class _Check:
    """Pass 1: validate and classify; spool what pass 2 writes."""

    def __init__(self, upload, report, spool):
        self.upload, self.report, self.spool = upload, report, spool
        self.dataset = upload.dataset
        self.seen = set()
        self.batch = []  # [(record, outputs)]
        self.sql = TaskSql()
        self.runs = imported.runs_of(self.dataset)

    def error(self, line, message):
        report = self.report
        report.error_count += 1
        if len(report.errors) < MAX_ERRORS:
            report.errors.append({"line": line, "message": message})

    def run(self):
        try:
            with open(self.upload.path, "rb") as stream:
                for _, line, data, error in _records(self.upload, stream):
                    self.take(line, data, error)
        except SourceError as error:  # the rest of the file cannot be read
            self.error(None, str(error))
        if not self.seen and not self.report.error_count:
            self.error(None, "the file holds no records")
        self.flush()
        if self.upload.mode == "replace" and not self.report.error_count:
            self.report.missing = len(gone(self.dataset, self.seen, self.upload.allow_mass_missing))

    def take(self, line, data, error):
        if error is not None:
            self.error(line, error)
            return
        data, outputs, error = imported.take(data)
        try:
            record = validate(data)
        except InvalidRecord as invalid:
            self.error(line, str(invalid))
            return
        if error is not None:
            self.error(line, error)
        elif record.external_id in self.seen:
            self.error(line, f"duplicate id {record.external_id!r} (an earlier line has it)")
        else:
            self.seen.add(record.external_id)
            self.batch.append((record, outputs))
            if len(self.batch) >= BATCH_SIZE:
                self.flush()

    def flush(self):
        batch, self.batch = self.batch, []
        if not batch:
            return
        if self.report.error_count:  # nothing will be written: the rest is only validated (and previewed)
            if len(self.report.preview) < PREVIEW_ROWS:
                batch = batch[:PREVIEW_ROWS]
                existing = self.existing([record.external_id for record, _ in batch])
                self.preview(batch, [action_of(r, existing.get(r.external_id)) for r, _ in batch])
            return
        existing = self.existing([record.external_id for record, _ in batch])
        rows, restore, actions = [], [], []
        for record, _ in batch:
            action = self.count(record, existing.get(record.external_id), rows, restore)
            actions.append(action)
        with_outputs = [(r.external_id, r.prompt_hash, outs) for r, outs in batch if outs]
        output_rows = imported.changed(self.dataset, self.runs, with_outputs) if with_outputs else []
        self.report.outputs += len(output_rows)
        self.preview(batch, actions)
        _spool(self.spool, (rows, restore, output_rows))

    def count(self, record, row, rows, restore):
        """Count what the import does with ``record`` (its existing ``row`` or None); collect what it writes."""
        action, report = action_of(record, row), self.report
        report.restored += row is not None and row[2]
        if action in ("add", "change"):
            rows.append(stored(record))
        elif action == "restore":
            restore.append(row[0])
        if action == "add":
            report.added += 1
        elif action == "change":
            report.changed += 1
        else:
            report.unchanged += 1
        return action

    def existing(self, external_ids):
        with self.sql.cursor() as cursor:
            cursor.execute(*self.sql.select_existing(self.dataset, external_ids))
            return {external_id: (pk, digest, missing) for external_id, pk, digest, missing in cursor.fetchall()}

    def preview(self, batch, actions):
        shown = self.report.preview
        for (record, outs), action in zip(batch[: PREVIEW_ROWS - len(shown)], actions, strict=False):
            shown.append(preview_row(record, outs, action))


def action_of(record, row):
    """add, change, restore (unchanged but missing) or unchanged, by the record's existing row."""
    if row is None:
        return "add"
    if row[1] != record.content_hash:
        return "change"
    return "restore" if row[2] else "unchanged"


def preview_row(record, outs, action):
    """A record as it will be stored, and what the import does with it."""
    row = {
        "id": record.external_id,
        "title": record.title,
        "prompt": record.prompt,
        "reference": record.reference,
        "messages": record.messages,
        "metadata": record.metadata,
        "action": action,
    }
    if outs:
        row["outputs"] = [{"label": label, "text": text} for label, text in outs]
    return row


def gone(dataset, seen, allow_mass_missing):
    """Pks of the dataset's present tasks not in ``seen``; refused (conflict) when
    more than MASS_MISSING_FRACTION of them unless ``allow_mass_missing``."""
    present = Task.objects.filter(source=dataset, missing_since__isnull=True).values_list("id", "external_id")
    count, result = 0, []
    for pk, external_id in present.iterator(chunk_size=5000):
        count += 1
        if external_id not in seen:
            result.append(pk)
    if result and not allow_mass_missing and len(result) > count * MASS_MISSING_FRACTION:
        raise UploadRefused(
            "conflict",
            f"replace would mark {len(result)} of the dataset's {count} present tasks missing (more than "
            f"{MASS_MISSING_FRACTION:.0%}): nothing was imported. Append instead, or confirm with "
            "allow_mass_missing=1",
        )
    return result


def _lock(dataset):
    """Uploads into one dataset wait for each other (SQLite: the write transaction already does)."""
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"dataset:{dataset}".encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _spool(spool, batch):
    # Length-prefixed marshal.dumps: marshal.load() on a file reads it in many small
    # pieces (0.08 s a batch of 2,000 records, measured), loads() of one read does not.
    data = marshal.dumps(batch)
    spool.write(len(data).to_bytes(8, "big"))
    spool.write(data)


def _unspool(spool):
    """The next spooled batch, or None at the end."""
    size = spool.read(8)
    return marshal.loads(spool.read(int.from_bytes(size, "big"))) if size else None


def _write(upload, report, spool, seen):
    dataset, now = upload.dataset, timezone.now()
    sql, stamp = TaskSql(), connection.ops.adapt_datetimefield_value(now)
    runs = imported.runs_of(dataset)
    touched = set()
    spool.seek(0)
    with transaction.atomic():
        _lock(dataset)
        while True:
            batch = _unspool(spool)
            if batch is None:
                break
            rows, restore, output_rows = batch
            if rows:
                with sql.cursor() as cursor:
                    sql.upsert_rows(cursor, dataset, rows, stamp)
            if restore:
                Task.objects.filter(pk__in=restore).update(missing_since=None, updated_at=now)
            if output_rows:
                touched |= imported.write(dataset, runs, output_rows, upload.user, now)
        if upload.mode == "replace":
            report.missing = _mark_missing(gone(dataset, seen, upload.allow_mass_missing), now)
        if report.changes:
            version = record_version(upload, report)
            Run.objects.filter(pk__in=touched).update(dataset_version=version, updated_at=now)
            report.version = version.number
    refresh_statistics(Task, report.added)
    refresh_statistics(LLMJob, report.outputs)


def _mark_missing(pks, now):
    for start in range(0, len(pks), MARK_BATCH_SIZE):
        Task.objects.filter(pk__in=pks[start : start + MARK_BATCH_SIZE]).update(missing_since=now, updated_at=now)
    return len(pks)
