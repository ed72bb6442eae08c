"""Garbage collection for long-running processes (the worker, gunicorn workers).

A collection stops every thread of the process while it runs, and a full one
walks every object the process holds. Once start-up is done, what it left
(imports, settings, URLconf, SDK clients) is frozen out of collections: in a
gunicorn worker under the poll benchmark that cut full-collection pauses
from 15-35 ms to 5-8 ms. The streaming worker also collects young objects
10x less often: GC took 0.56 s of its 4.8 s of CPU for 800 answers streamed
at 200 in flight (bench/worker.py, realistic), with ~100 ms full collections;
tuned, 0.17 s and none. (For gunicorn the rarer young collections measured
no better, so it keeps CPython's default.)
"""

import gc

STREAMING_THRESHOLDS = (7_000, 10, 10)


def tune_gc(thresholds=None):
    """Call once a process's imports and clients are ready; not in a test's process."""
    gc.collect()
    gc.freeze()
    if thresholds:
        gc.set_threshold(*thresholds)
