#!/usr/bin/env python
"""``manage.py process_llm_jobs`` as bench/fault_crash.py runs it: the same
command, with each Pub/Sub message's delivery attempt written to the file
named by CRASH_BENCH_ATTEMPTS (one ``job_id attempt`` line per message,
flushed at once, so a worker killed with -9 loses none of it).

The record wraps the transport's own callback (not the SDK): it works on
any version of eval/transports/pubsub.py, so the same bench measures the
code before and after a change.

    python bench/crash_worker.py --transport pubsub --concurrency 100
"""

import os
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def record_delivery_attempts(path):
    from eval.transports import pubsub

    out = open(path, "a", buffering=1)  # noqa: SIM115 (open for the life of the process)
    lock = threading.Lock()
    callback = pubsub.PubSubTransport._callback

    def recording(self, message):
        with lock:
            out.write(f"{message.data.decode(errors='replace')} {message.delivery_attempt or 0}\n")
        return callback(self, message)

    pubsub.PubSubTransport._callback = recording


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coreproject.settings")
    import django

    django.setup()
    if os.environ.get("CRASH_BENCH_ATTEMPTS"):
        record_delivery_attempts(os.environ["CRASH_BENCH_ATTEMPTS"])
    from django.core.management import call_command

    call_command("process_llm_jobs", *sys.argv[1:])


if __name__ == "__main__":
    main()
