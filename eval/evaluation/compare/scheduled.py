"""A schedule's firing compares itself with its dataset's baseline once it is
done (issue 22 item 3): the daemon's pass calls ``gate_finished`` after it
finishes runs. Each firing is claimed by one conditional UPDATE of
``gated_at`` (two daemons never both compare it); the significant
regressions found, in words, go to ``Run.regression`` (empty: none), which
the alert rules read (eval/alerts: one alert per schedule while its latest
firing regressed; the next clean firing resolves it)."""

import logging

from django.db.models import F
from django.utils import timezone

from eval.evaluation.compare import gate, service
from eval.evaluation.runs import baselines
from eval.models import Run

log = logging.getLogger(__name__)

BATCH = 20


def _claim(run):
    now = timezone.now()
    return Run.objects.filter(pk=run.pk, gated_at__isnull=True).update(
        gated_at=now, updated_at=now, version=F("version") + 1
    )


def gate_one(run, alpha=gate.DEFAULT_ALPHA):
    """Compare firing ``run`` with its baseline and record what was found; returns the words."""
    baseline = baselines.baseline_of(baselines.dataset_of(run))
    if baseline is None or baseline.pk == run.pk:
        return []
    words = gate.words(gate.decide(service.build(baseline, run), alpha=alpha))
    Run.objects.filter(pk=run.pk).update(gated_against=baseline, regression="; ".join(words))
    if words:
        log.warning("run %s regressed against baseline %s: %s", run.pk, baseline.pk, "; ".join(words))
    return words


def gate_finished(limit=BATCH):
    """Gate the done firings not gated yet; returns how many regressed."""
    firings = Run.objects.filter(
        parent__isnull=False, kind=Run.Kind.GENERATE, status=Run.Status.DONE, gated_at__isnull=True
    ).order_by("pk")[:limit]
    regressed = 0
    for run in firings:
        if _claim(run):
            regressed += bool(gate_one(run))
    return regressed
