"""Children that die with their supervisor (Linux).

A supervisor killed by SIGKILL (``kill -9``, the OOM killer) runs no handler, so
it cannot stop its children: they were left running under PID 1, gunicorn holding
the port, and the next supervisor crash-looped its web beside them and started a
second worker and daemon. ``PR_SET_PDEATHSIG`` makes the kernel send the child a
signal when its parent dies, however it died: SIGTERM, so the child's own graceful
stop runs (a worker hands its jobs back, gunicorn drains its requests).

Elsewhere (macOS, BSD) there is no such call: ``die_with_parent()`` is None there
and run_services.py's start-up check (``guards.find_strays``) is the only defence.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    # Looked up once, before any fork: the preexec function runs between fork and
    # exec, where loading a library (locks, allocation) is unsafe with threads about.
    return ctypes.CDLL(None, use_errno=True).prctl


_PRCTL = _prctl()


def die_with_parent(signum=signal.SIGTERM):
    """A ``preexec_fn`` for subprocess.Popen that asks for ``signum`` when this
    process dies, or None where the platform cannot.

    The signal is tied to the thread that forks, not the process: start children
    from a thread that lives as long as the supervisor (its main thread)."""
    if _PRCTL is None:
        return None
    parent = os.getpid()
    args = (ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(int(signum)))  # built before the fork, as _PRCTL

    def preexec():
        _PRCTL(*args)
        # Died between fork and prctl: no signal will come, so act on it now.
        if os.getppid() != parent:
            os.kill(os.getpid(), signum)

    return preexec
