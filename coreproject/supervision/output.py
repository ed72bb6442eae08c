"""The supervisor's output: a write never raises.

Its stdout is often a pipe (``run_services.py | tee log``, a journal). When the
reader goes away, writing raises BrokenPipeError (Python ignores SIGPIPE, so a
closed pipe is an EPIPE exception, not a signal); raised while it stops, it
would leave the children running, and in a pump thread it would leave a
child blocked on a full pipe. So a stream that fails is dropped for good: the
lines go to the next one (stdout, then stderr), then nowhere.
"""

import os
import sys
import threading


class Lines:
    """Whole lines to the first stream that still takes them; thread-safe."""

    def __init__(self, streams=None):
        self._streams = list(streams) if streams is not None else [sys.stdout, sys.stderr]
        self._lock = threading.Lock()

    def write(self, line):
        with self._lock:
            while self._streams:
                stream = self._streams[0]
                try:
                    stream.write(line + "\n")
                    stream.flush()
                    return
                except (OSError, ValueError):  # EPIPE and the like; ValueError: the stream was closed
                    self._streams.pop(0)
                    _discard(stream)


def _discard(stream):
    """Point a dead stream's descriptor at /dev/null: the lines left in its buffer
    would fail again when the interpreter flushes it at exit (exit code 120)."""
    try:
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError):  # io.UnsupportedOperation is both: not a real file
        return
    try:
        os.dup2(devnull, fd)
    except OSError:  # its descriptor is closed already: nothing left to flush there
        pass
    finally:
        os.close(devnull)
