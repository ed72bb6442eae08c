"""Task sync: read a task source (JSONL, CSV, JSON, a directory of them or an
HTTP(S) URL) and upsert its records into ``Task`` by (source, external_id).

    from eval.sync import sync_tasks
    result = sync_tasks("tasks.jsonl")        # SyncResult with the counts
"""

from eval.sync.fetch import FetchLimitExceeded
from eval.sync.importer import MassMissingRefused, SyncInterrupted, SyncResult, sync_tasks
from eval.sync.sources import SourceError

__all__ = ["FetchLimitExceeded", "MassMissingRefused", "SourceError", "SyncInterrupted", "SyncResult", "sync_tasks"]
