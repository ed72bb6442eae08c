"""``manage.py export_reviews --format jsonl|csv --what tasks|judgements|pairs
[--source S] [--run ID[,ID]] [--include-stale] [-o FILE]``: an export to stdout or a file.

Streamed a batch at a time (eval/evaluation/exports/). With ``-o`` it is
written beside FILE and renamed into place at the end, so FILE is never a
partial export. The row count goes to stderr. Exit codes: 0 ok, 1 error
(database, file), 2 usage.
"""

import os
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from eval.evaluation.errors import InvalidInput
from eval.evaluation.exports import FORMATS, KINDS, Export


class Command(BaseCommand):
    # A read: the system checks (which import the whole URLconf, the API and its
    # schemas) would double its start-up time and add ~35 MB to its peak RSS.
    requires_system_checks = []
    help = (
        "Export tasks (with their judgements summarised), current judgements, or preference pairs "
        "as JSONL or CSV. Withdrawn and superseded judgements never; stale ones with --include-stale."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", required=True, choices=list(FORMATS), dest="fmt")
        parser.add_argument("--what", required=True, choices=list(KINDS))
        parser.add_argument("--source", default=None, help="only tasks of this source")
        parser.add_argument(
            "--run",
            default=None,
            metavar="ID[,ID]",
            help="the judgements a run is in and the tasks it has a job on; two ids: the verdicts between them",
        )
        parser.add_argument(
            "--include-stale", action="store_true", help="also judgements made against an earlier prompt"
        )
        parser.add_argument("-o", "--output", default=None, metavar="FILE", help="write here (default: stdout)")

    def handle(self, *args, fmt, what, source, run, include_stale, output, **options):
        try:
            export = Export(what, fmt, source=source, include_stale=include_stale, run=run)
        except InvalidInput as error:
            raise CommandError(str(error), returncode=2) from None
        started = time.monotonic()
        try:
            if output:
                _to_file(export, Path(output))
            else:
                self._to_stdout(export)
        except DatabaseError as error:
            raise CommandError(f"database error: {error}", returncode=1) from None
        except OSError as error:
            raise CommandError(f"cannot write {output or 'stdout'}: {error}", returncode=1) from None
        elapsed = time.monotonic() - started
        where = f" to {output}" if output else ""
        self.stderr.write(f"exported {export.rows} {what}{where} in {elapsed:.2f} s")

    def _to_stdout(self, export):
        # Exports are UTF-8 whatever the locale says (OutputWrapper hands these to the stream).
        if hasattr(self.stdout, "reconfigure") and (self.stdout.encoding or "").lower() not in ("utf-8", "utf8"):
            self.stdout.reconfigure(encoding="utf-8")
        for chunk in export:
            self.stdout.write(chunk, ending="")
        self.stdout.flush()


def _to_file(export, path):
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8", newline="") as file:
            for chunk in export:
                file.write(chunk)
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
