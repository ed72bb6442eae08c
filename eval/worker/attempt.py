"""One attempt of one claimed job: wait for the provider's limits, stream the
model's answer under the job timeout, and turn how it ended into ONE final
write (a transition). Returns a ``Settled`` for the transport."""

import asyncio
import functools
import logging
import time

from django.conf import settings

from eval.evaluation.runs import finishing
from eval.jobs import endings, states
from eval.jobs.outcomes import Outcome, Settled
from eval.providers import get_provider
from eval.providers.base import GenerationRequest, joined_system, split_conversation
from eval.providers.errors import ProviderError
from eval.worker import provider_rate_limit
from eval.worker.run_state import StopReason

log = logging.getLogger(__name__)


def generation_request(job):
    """What the provider is asked: the job's messages_sent as they are (fixed when it
    was created: a template's rendering, or the task's turns with params.system);
    for a job from before them, a conversation task's turns (its system turn first,
    then the job's own ``system`` param), else the prompt as one turn."""
    system, turns = split_conversation(job.messages)
    return GenerationRequest(
        model=job.model,
        prompt=job.prompt,
        max_tokens=job.max_tokens,
        system=system if job.exact else joined_system(system, job.params.get("system", "")),
        temperature=job.params.get("temperature"),
        messages=turns,
        top_p=job.params.get("top_p"),
        stop=tuple(job.params.get("stop") or ()),
        seed=job.params.get("seed"),
    )


class Attempt:
    """``write(w)`` queues a final write (see writer.py) and returns its
    result; ``semaphore(provider)`` bounds this process's calls to a provider;
    ``db_call`` runs ORM work off the loop."""

    def __init__(self, state, *, worker_id, write, semaphore, db_call):
        self.state = state
        self.job = state.job
        self.worker_id = worker_id
        self.write = write
        self.semaphore = semaphore
        self.db_call = db_call
        self.extra = {"job_id": self.job.id, "worker_id": worker_id, "attempt": self.job.attempt}

    async def run(self):
        provider = get_provider(self.job.provider)
        if provider is None:
            return await self._not_configured()
        try:
            result = await self._generate(provider)
        except asyncio.CancelledError:
            return await self._stopped()
        except TimeoutError:
            return await self._timed_out()
        except ProviderError as error:
            return await self._provider_error(error)
        except Exception as error:  # an SDK or code error we did not map: retry, it may pass
            log.exception("unexpected error in provider call", extra=self.extra)
            return await self._provider_error(
                ProviderError("server_error", f"Unexpected error: {type(error).__name__}")
            )
        return await self._succeeded(provider, result)

    async def _generate(self, provider):
        job = self.job
        request = generation_request(job)
        self.state.expected_tokens = provider.expected_tokens(request)
        # The shared per-provider rate limit, outside the job timeout: waiting
        # for a slot during a bulk run must not fail jobs as timed_out.
        await provider_rate_limit.acquire(job.provider, call=self.db_call, on_wait=self.state.waiting)
        async with asyncio.timeout(settings.JOB_TIMEOUT_SECONDS):
            async with self.semaphore(provider):
                self.state.generating()
                return await provider.stream(request, self.state.on_text)

    def _fenced(self, transition, **kwargs):
        """A transition of this attempt, as a write: fenced by job, worker and attempt."""
        return functools.partial(transition, self.job.id, self.worker_id, self.job.attempt, **kwargs)

    # --- how it ended ---------------------------------------------------------------------
    async def _succeeded(self, provider, result):
        job = self.job
        cost = provider.cost(job.model, result.input_tokens, result.output_tokens)
        self.state.usage = (result.input_tokens, result.output_tokens, cost)
        success = endings.Success(
            job.id,
            job.attempt,
            output=result.text,
            stop_reason=result.stop_reason,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost=cost,
        )
        if finishing.needs_finishing(job):  # a judge or a run's job; a plain job asks nothing
            success = await self._finish(success)
            if isinstance(success, finishing.Failure):
                return await self._bad_answer(success, result, cost)
            if isinstance(success, ProviderError):
                return await self._provider_error(success)
        if not await self.write(success):
            log.warning("finished a job this worker no longer holds; result dropped", extra=self.extra)
            return Settled(Outcome.LOST)
        log.info("job succeeded", extra=self.extra)
        return Settled(Outcome.SUCCEEDED)

    async def _finish(self, success):
        """The success completed by eval.evaluation (checks, a judge's answer), a
        Failure, or a ProviderError to retry if that work itself broke."""
        self.state.finishing = True  # the call is over: too late to cancel
        try:
            return await self.db_call(finishing.finish, self.job, success)
        except Exception as error:
            log.exception("could not finish a successful call", extra=self.extra)
            return ProviderError("server_error", f"Could not record the answer: {type(error).__name__}")

    async def _bad_answer(self, failure, result, cost):
        """The call succeeded but its answer fails the job (a judge's malformed JSON): raw text and cost kept."""
        log.warning("job failed: %s", failure.code, extra=self.extra)
        self.state.error_code = failure.code
        written = await self.write(
            self._fenced(
                endings.fail,
                code=failure.code,
                message=failure.message,
                output=result.text,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                cost=cost,
            )
        )
        return Settled(Outcome.FAILED if written else Outcome.LOST)

    async def _not_configured(self):
        message = f"provider {self.job.provider!r} is not configured on this worker"
        await self.write(self._fenced(endings.fail, code="bad_request", message=message))
        return Settled(Outcome.FAILED)

    async def _failed(self, code, message):
        """A permanent end: failed, keeping what streamed so far."""
        state = self.state
        state.error_code = code
        await self.write(
            self._fenced(endings.fail, code=code, message=message, output=state.output, output_tokens=state.tokens)
        )
        return Settled(Outcome.FAILED)

    async def _timed_out(self):
        log.warning("job timed out", extra=self.extra)
        limit = settings.JOB_TIMEOUT_SECONDS
        return await self._failed("timed_out", f"The job ran past JOB_TIMEOUT_SECONDS ({limit:g} s)")

    async def _stopped(self):
        state = self.state
        if state.stop_reason is StopReason.CANCEL:
            await self.write(self._fenced(endings.finish_cancel, output=state.output, output_tokens=state.tokens))
            log.info("job cancelled", extra=self.extra)
            return Settled(Outcome.CANCELLED)
        if state.stop_reason is StopReason.SHUTDOWN:
            await self.write(self._fenced(endings.hand_back))
            log.info("job handed back", extra=self.extra)
            return Settled(Outcome.HANDED_BACK)
        return Settled(Outcome.LOST)  # the lease is someone else's: write nothing

    async def _provider_error(self, error):
        if not error.transient:
            log.warning("job failed: %s", error.code, extra=self.extra)
            return await self._failed(error.code, error.message)
        self.state.error_code = error.code
        status, delay = await self.write(
            self._fenced(
                endings.retry_later,
                code=error.code,
                message=error.message,
                retry_after=error.retry_after,
                max_attempts=self.job.max_attempts,
            )
        )
        log.warning("transient error %s -> %s", error.code, status, extra=self.extra)
        if status == states.QUEUED:
            return Settled(Outcome.QUEUED, retry_at=time.monotonic() + delay)
        return Settled(Outcome.FAILED if status is not None else Outcome.LOST)
