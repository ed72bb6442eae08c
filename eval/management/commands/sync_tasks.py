"""``manage.py sync_tasks [--source PATH_OR_URL] [--dry-run] [--allow-mass-missing]``: one sync pass.

Exit codes: 0 ok (skipped records are reported, not an error), 1 the source
could not be read (a URL past SYNC_FETCH_TIMEOUT_SECONDS or
SYNC_FETCH_MAX_BYTES too), the database failed, or the sync would mark more
than half of the source's present tasks missing and ``--allow-mass-missing``
was not given (eval/sync/importer.py), 2 usage (e.g. no source at all).
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from eval.sync import SourceError, sync_tasks


class Command(BaseCommand):
    help = "Sync evaluation tasks from a JSONL/CSV/JSON file, a directory of them or an HTTP(S) URL."

    def add_arguments(self, parser):
        parser.add_argument("--source", default=None, help="path or URL (default: TASK_SOURCE)")
        parser.add_argument("--dry-run", action="store_true", help="count what would change; write nothing")
        parser.add_argument(
            "--allow-mass-missing",
            action="store_true",
            help="mark tasks missing even when that is more than half of the source's present tasks",
        )

    def handle(self, *args, source, dry_run, allow_mass_missing, **options):
        location = source or settings.TASK_SOURCE
        if not location:
            raise CommandError("no task source: pass --source PATH_OR_URL or set TASK_SOURCE", returncode=2)
        try:
            result = sync_tasks(location, dry_run=dry_run, allow_mass_missing=allow_mass_missing)
        except SourceError as error:
            raise CommandError(f"sync failed: {error}", returncode=1) from None
        except DatabaseError as error:
            raise CommandError(f"sync failed: database error: {error}", returncode=1) from None
        self.stdout.write(f"synced {result.location}: {result.summary()}")
        if result.invalid:
            self.stdout.write(f"skipped {result.invalid} invalid record(s):")
            for where, reason in result.skipped:
                self.stdout.write(f"  {where}: {reason}")
            hidden = result.invalid - len(result.skipped)
            if hidden:
                self.stdout.write(f"  ... and {hidden} more not shown")
