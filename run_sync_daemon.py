#!/usr/bin/env python
"""The sync daemon: keeps tasks in step with TASK_SOURCE and repairs jobs.

    ./run_sync_daemon.py          # every SYNC_INTERVAL_SECONDS until SIGTERM/SIGINT
    ./run_sync_daemon.py --once   # one pass, then exit

The same as ``manage.py run_daemon`` (eval/management/commands/run_daemon.py,
eval/daemon/). Exit status: 0 ok, 1 error (bad settings, or a failed --once
pass), 2 usage.
"""

import os
import sys
from pathlib import Path


def main(argv):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coreproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["run_sync_daemon.py", "run_daemon", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
