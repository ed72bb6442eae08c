"""Final writes of attempts, committed together.

An attempt that ends queues ONE write and awaits its result. Writes that
arrive while a commit is on its way wait for the next one, so at any load
there is at most one commit in flight, each holding every write that came
meanwhile, in one transaction. A write is one of two things:

- a ``endings.Success``: successes, the common case, share ONE
  ``endings.succeed`` statement; each caller learns whether its row was
  written (False: the worker no longer held the job);
- a callable taking no argument (a transition with its fence bound, e.g.
  ``partial(endings.fail, job_id, worker_id, attempt, code=...)``):
  run as it is; its caller gets what it returns.
"""

import asyncio
import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, transaction

from eval.jobs import endings

log = logging.getLogger(__name__)

Write = endings.Success | Callable[[], object]


def commit(worker_id, writes):
    """Run ``writes`` in one transaction; returns one result per write, in
    order (an exception instance for a write that failed). If a write raises
    a database error the transaction is rolled back and the writes run one by
    one, so one bad write does not lose the others."""
    try:
        with transaction.atomic():
            return _grouped(worker_id, writes)
    except (OperationalError, InterfaceError):
        raise  # the connection is gone: Database retries the whole batch
    except Exception:
        log.warning("a grouped final write failed; writing them one by one", exc_info=True)
        return [_alone(worker_id, write) for write in writes]


def _grouped(worker_id, writes):
    written = endings.succeed(worker_id, [write for write in writes if _is_success(write)])
    return [write.job_id in written if _is_success(write) else write() for write in writes]


def _alone(worker_id, write):
    try:
        if _is_success(write):
            return write.job_id in endings.succeed(worker_id, [write])
        return write()
    except Exception as error:
        return error


def _is_success(write):
    return isinstance(write, endings.Success)


class Writer:
    """Queues final writes and commits whatever has gathered, one commit at a time."""

    def __init__(self, database, worker_id):
        self.db = database
        self.worker_id = worker_id
        self.commits = 0
        self._pending = []  # (write, future)
        self._task = None

    async def submit(self, write: Write):
        """Queue ``write``; returns its result once committed (raises what it raised)."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._commit_all(), name="writer")
        return await future

    async def close(self):
        if self._task is not None:
            await asyncio.wait([self._task])

    async def _commit_all(self):
        while await self.commit_pending():
            pass

    async def commit_pending(self):
        """Commit every write queued so far. False if there was none."""
        if not self._pending:
            return False
        batch, self._pending = self._pending, []
        try:
            results = await self.db.call(commit, self.worker_id, [write for write, _ in batch])
        except Exception as error:
            results = [error] * len(batch)
        self.commits += 1
        for (_, future), result in zip(batch, results, strict=True):
            _deliver(future, result)
        return True


def _deliver(future, result):
    if future.done():  # its caller went away
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
