#!/usr/bin/env python
"""The sync daemon: keeps tasks in step with TASK_SOURCE and repairs jobs.

    ./run_sync_daemon.py          # every SYNC_INTERVAL_SECONDS until SIGTERM/SIGINT
    ./run_sync_daemon.py --once   # one pass, then exit

See eval/sync/daemon.py. Exit status: 0 ok, 1 error (bad settings, or a
failed --once pass), 2 usage.
"""

import os
import sys
from pathlib import Path


def main(argv):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coreproject.settings")
    import django

    django.setup()

    from django.core import checks

    errors = [message for message in checks.run_checks() if message.is_serious()]
    for message in errors:
        print(f"run_sync_daemon.py: {message}", file=sys.stderr)
    if errors:
        return 1

    from eval.sync.daemon import main as run_daemon

    return run_daemon(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
