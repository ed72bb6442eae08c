"""When a running run is over, the one rule both sides ask:

- ``shown``: the status a read shows (the API, the pages, the ``runs``
  command). A read never writes: a run whose jobs have all ended reads as
  ``done`` before anything stores it.
- ``ended``: what the daemon's pass (services.finish_ended) asks before it
  stores ``done`` with one conditional UPDATE.

A running run is over once none of its jobs is live; a judge run also waits
for the runs it judges (their own stored status may lag behind, so their jobs
are asked, not their status)."""

from eval.jobs import states
from eval.models import LLMJob, Run


def _judged_runs_ended(run):
    judged = [i for i in (run.compare_a_id, run.compare_b_id, run.score_of_id) if i]
    if Run.objects.filter(pk__in=judged, status=Run.Status.SCHEDULED).exists():
        return False
    return not LLMJob.objects.live().filter(run_id__in=judged).exists()


def ended(run, job_counts=None):
    """Whether a running ``run`` has nothing left to wait for. ``job_counts`` (jobs
    per status, as report.counts gives them) spares the query when it is at hand."""
    if run.status != Run.Status.RUNNING:
        return False
    if job_counts is None:
        live = LLMJob.objects.live().filter(run_id=run.pk).exists()
    else:
        live = any(job_counts.get(status) for status in states.LIVE)
    return not live and (run.kind != Run.Kind.JUDGE or _judged_runs_ended(run))


def shown(run, job_counts=None):
    """The status a read shows: ``done`` for a running run that has ended, else the stored one."""
    return Run.Status.DONE if ended(run, job_counts) else run.status
