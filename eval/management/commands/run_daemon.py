"""``manage.py run_daemon [--once]`` (``run_sync_daemon.py`` runs it): every
SYNC_INTERVAL_SECONDS sync tasks from TASK_SOURCE and run the job engine's
repairs, one active daemon at a time (eval/daemon/).

SIGTERM/SIGINT stop it within about a second, exit 0. Exit 1: a settings
error (the system checks run first) or a failed ``--once`` pass.
"""

import signal

from django.core.management.base import BaseCommand, CommandError

from eval.daemon.loop import Daemon


class Command(BaseCommand):
    help = "Sync tasks from TASK_SOURCE and repair jobs every SYNC_INTERVAL_SECONDS; one active daemon at a time."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="do one pass and exit (1 if a step failed)")

    def handle(self, *args, once, **options):
        daemon = Daemon(once=once)
        signal.signal(signal.SIGTERM, daemon.stop)
        signal.signal(signal.SIGINT, daemon.stop)
        if not daemon.run():
            raise CommandError("the pass failed (see the log line above)", returncode=1)
