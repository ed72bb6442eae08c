"""Upsert a source's records into Task, by (source, external_id), in batches.

Per batch: one SELECT of the existing rows' content hashes, then one upsert
(INSERT ... ON CONFLICT DO UPDATE) of the new and changed records, so an
unchanged record costs a hash and a dictionary lookup and writes nothing (a
batch with nothing to write opens no transaction). Each batch commits on its
own: a long sync never holds SQLite's write lock for more than one batch.

After the whole source was read, tasks of this source that it no longer
holds get ``missing_since`` (their reviews and jobs stay); a task that
reappears has it cleared. A source that fails part way marks nothing
missing. A record that is invalid but has an id keeps its task as it was
(neither updated nor marked missing).

A mass missing is refused unless asked for (``allow_mass_missing``): when
the source would mark more than half of its present tasks missing (an
empty, truncated or all-invalid file, a wrong URL answering an empty list),
nothing is marked and MassMissingRefused (a SourceError) says so; the
records read were still upserted. Present tasks are those without
``missing_since`` before this sync; a source with none is never refused.
"""

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from eval.models import DatasetVersion, Task
from eval.sync.records import InvalidRecord, record_id, validate
from eval.sync.sources import SourceError, SyncInterrupted, open_source
from eval.sync.task_sql import TaskSql

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
MARK_BATCH_SIZE = 500
ANALYZE_MIN_ROWS = 5000
MAX_REPORTED_INVALID = 1000  # skipped records kept for the report (all are counted)
MAX_SOURCE_NAME = 200  # Task.source max_length
MASS_MISSING_FRACTION = 0.5  # marking more than this share of a source's present tasks missing needs asking


class MassMissingRefused(SourceError):
    """The sync would mark more than MASS_MISSING_FRACTION of the source's present tasks missing."""

    def __init__(self, result, missing, present):
        self.result, self.missing, self.present = result, missing, present
        super().__init__(
            f"source {result.source!r} ({result.location}): refused to mark {missing} of its {present} present "
            f"tasks missing (more than {MASS_MISSING_FRACTION:.0%}; the source read {result.records} record(s), "
            f"{result.invalid} invalid): it looks empty, truncated or wrong, so nothing was marked missing. "
            "If those tasks really left the source, run manage.py sync_tasks --allow-mass-missing"
        )


@dataclass
class SyncResult:
    source: str
    location: str
    dry_run: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    missing: int = 0  # newly marked missing by this sync
    restored: int = 0  # were missing, back in the source
    skipped: list = field(default_factory=list)  # [(where, reason)], at most MAX_REPORTED_INVALID
    seconds: float = 0.0

    @property
    def records(self):
        return self.created + self.updated + self.unchanged + self.invalid

    @property
    def written(self):
        return self.created + self.updated + self.missing + self.restored

    def counts(self):
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "invalid": self.invalid,
            "missing": self.missing,
            "restored": self.restored,
        }

    def summary(self):
        counts = " ".join(f"{key}={value}" for key, value in self.counts().items())
        rate = self.records / self.seconds if self.seconds > 0 else 0.0
        dry = " (dry run: nothing written)" if self.dry_run else ""
        return f"source={self.source} {counts} in {self.seconds:.2f} s ({rate:,.0f} records/s){dry}"


def source_name(source, name=None):
    name = (name or settings.TASK_SOURCE_NAME or source.name or "").strip()
    if not name:
        raise SourceError(f"{source}: cannot derive a source name; set TASK_SOURCE_NAME")
    if len(name) > MAX_SOURCE_NAME:
        raise SourceError(f"source name {name[:40]!r}... is longer than {MAX_SOURCE_NAME} characters")
    return name


def sync_tasks(
    location, *, name=None, dry_run=False, batch_size=BATCH_SIZE, should_stop=None, allow_mass_missing=False
):
    """Sync one source into Task; return a SyncResult.

    ``name`` overrides TASK_SOURCE_NAME and the derived name. ``should_stop``
    is checked between batches and while a URL is awaited (SyncInterrupted).
    Raises SourceError when the source cannot be read, and MassMissingRefused
    (see above) unless ``allow_mass_missing``."""
    started = time.monotonic()
    source = open_source(location, should_stop)
    result = SyncResult(source=source_name(source, name), location=str(source), dry_run=dry_run)
    sync = _Sync(result, batch_size, should_stop, allow_mass_missing)
    sync.run(source.records())
    if result.written and not dry_run:
        _record_version(result)
    result.seconds = time.monotonic() - started
    return result


def _record_version(result):
    """A sync that changed its dataset makes a version too, as an upload does (by
    no one; the location stands for the file name, with no hash: a URL is read as it
    streams), so runs over the daemon's dataset know when it changed."""
    DatasetVersion.objects.record(
        result.source,
        mode=DatasetVersion.Mode.REPLACE,
        file_name=_shown(result.location)[:255],
        added=result.created,
        changed=result.updated,
        missing=result.missing,
        unchanged=result.unchanged,
    )


def _shown(location):
    """``file /path/to/tasks.jsonl`` -> ``tasks.jsonl``; a URL (already without its secrets) as it is."""
    kind, _, where = location.partition(" ")
    return where if kind == "url" else where.rstrip("/").rsplit("/", 1)[-1]


class _Sync:
    def __init__(self, result, batch_size, should_stop, allow_mass_missing=False):
        self.result = result
        self.allow_mass_missing = allow_mass_missing
        self.source = result.source
        self.dry_run = result.dry_run
        self.batch_size = max(1, batch_size)
        self.should_stop = should_stop or (lambda: False)
        self.seen = set()  # external ids in the source (also the invalid ones with an id)
        self.batch = []
        self.sql = TaskSql()
        # PostgreSQL plans the per-batch SELECT from the table's statistics; on a
        # table that grew a lot since its last ANALYZE (a first import) it scans
        # the whole source for every batch. ANALYZE whenever this sync has
        # written four times the rows the statistics knew of (at least
        # ANALYZE_MIN_ROWS): once the statistics show how rows spread over
        # sources, the plan stays right as the table grows, so a few cheap
        # early ANALYZEs suffice (autovacuum refreshes them later).
        self.analyze = connection.vendor == "postgresql" and not self.dry_run
        self.known_rows = self.analyzed_rows() if self.analyze else 0
        self.written_since_analyze = 0

    def skip(self, where, reason, data=None):
        result = self.result
        result.invalid += 1
        if len(result.skipped) < MAX_REPORTED_INVALID:
            result.skipped.append((where, reason))
        external_id = record_id(data)
        if external_id is not None:
            self.seen.add(external_id)

    def run(self, records):
        seen = self.seen
        batch, size = self.batch, self.batch_size
        for label, position, data, error in records:
            if error is not None:
                self.skip(f"{label} {position}", error)
                continue
            try:
                record = validate(data)
            except InvalidRecord as invalid:
                self.skip(f"{label} {position}", str(invalid), data)
                continue
            if record.external_id in seen:
                self.skip(f"{label} {position}", f"duplicate id {record.external_id!r} (an earlier record has it)")
                continue
            seen.add(record.external_id)
            batch.append(record)
            if len(batch) >= size:
                self.flush()
                batch = self.batch
        self.flush()
        self.mark_missing()

    def flush(self):
        batch, self.batch = self.batch, []
        if not batch:
            return
        if self.should_stop():
            raise SyncInterrupted
        upserts, restore = self.classify(batch)
        if self.dry_run or not (upserts or restore):
            return
        now = timezone.now()
        with transaction.atomic():
            if upserts:
                self.upsert(upserts, now)
            if restore:
                Task.objects.filter(pk__in=restore).update(missing_since=None, updated_at=now)
        self.written_since_analyze += len(upserts)
        if self.analyze and self.written_since_analyze >= max(ANALYZE_MIN_ROWS, 4 * self.known_rows):
            self.refresh_statistics()

    def classify(self, batch):
        """Count the batch's records as created, updated, unchanged or restored; returns
        (records to upsert, pks of unchanged tasks back from missing)."""
        result = self.result
        existing = self.existing([record.external_id for record in batch])
        upserts, restore = [], []
        for record in batch:
            row = existing.get(record.external_id)
            if row is None:
                result.created += 1
                upserts.append(record)
                continue
            _, digest, missing = row
            result.restored += bool(missing)
            if digest != record.content_hash:
                result.updated += 1
                upserts.append(record)
            else:
                result.unchanged += 1
                if missing:
                    restore.append(row[0])
        return upserts, restore

    def analyzed_rows(self):
        """Rows in the task table as its statistics last saw them (0 if never analyzed)."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Task._meta.db_table])
            row = cursor.fetchone()
        return max(0, int(row[0])) if row else 0

    def refresh_statistics(self):
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(Task._meta.db_table)}")
        self.known_rows = self.analyzed_rows()
        self.written_since_analyze = 0

    def existing(self, external_ids):
        """{external_id: (pk, content_hash, is_missing)} of this source's rows among those ids."""
        with self.sql.cursor() as cursor:
            cursor.execute(*self.sql.select_existing(self.source, external_ids))
            return {external_id: (pk, digest, missing) for external_id, pk, digest, missing in cursor.fetchall()}

    def upsert(self, records, now):
        with self.sql.cursor() as cursor:
            self.sql.upsert(cursor, self.source, records, connection.ops.adapt_datetimefield_value(now))

    def mark_missing(self):
        """Tasks of this source that the source no longer holds."""
        if self.should_stop():
            raise SyncInterrupted
        present = Task.objects.filter(source=self.source, missing_since__isnull=True).values_list("id", "external_id")
        present_now, gone = 0, []
        for pk, external_id in present.iterator(chunk_size=5000):
            present_now += 1
            if external_id not in self.seen:
                gone.append(pk)
        self.refuse_mass_missing(len(gone), present_now)
        self.result.missing = len(gone)
        if self.dry_run or not gone:
            return
        now = timezone.now()
        for start in range(0, len(gone), MARK_BATCH_SIZE):
            Task.objects.filter(pk__in=gone[start : start + MARK_BATCH_SIZE], missing_since__isnull=True).update(
                missing_since=now, updated_at=now
            )

    def refuse_mass_missing(self, missing, present_now):
        """MassMissingRefused when ``missing`` is more than half of the tasks present before this
        sync (``present_now`` less the ones this sync created or restored; a dry run wrote none)."""
        if self.allow_mass_missing or not missing:
            return
        result = self.result
        present = present_now if self.dry_run else present_now - result.created - result.restored
        if missing > present * MASS_MISSING_FRACTION:
            raise MassMissingRefused(result, missing, present)
