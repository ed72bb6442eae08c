"""Which judgements a filter picks: the one rule of the exports
(``GET /api/exports/...``, ``manage.py export_reviews``) and of the judgements
list (``GET /api/judgements``, /judgements/), so a results row's or a run's
export holds exactly the judgements its link lists.

- ``source``: judgements of tasks of that task source.
- ``run``: one run id: the judgements it is in (one of its outputs judged, on
  either side, or a verdict of its judge jobs); two ids: the pairwise ones
  between them (one output of each: a win-rate cell).
- ``runs``: the results' scope (GET /api/results ``runs=``): every output judged
  belongs to one of these runs.
- ``model``: ``provider/model``, one or two, as ``run`` for the outputs' models.
- ``judged_by`` ``human`` | ``judge``; ``judge`` an LLM judge's ``provider/model``;
  ``blind``; ``kind`` ``score`` | ``pairwise``.
"""

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q

from eval.evaluation.errors import InvalidInput
from eval.models import Judgement, LLMJob, Run

MAX_SOURCE = 200  # Task.source's length
JUDGED_BY = ("human", "judge")


def _pair(one, other):
    """Q of a pairwise judgement with one output matching ``one`` and the other ``other``
    (each a function of a side, "job_a" or "job_b", to a Q)."""
    return (one("job_a") & other("job_b")) | (one("job_b") & other("job_a"))


def _either(side_q):
    return side_q("job_a") | side_q("job_b")


def _run_side(run_id):
    return lambda side: Q(**{f"{side}__run_id": run_id})


def _model_side(label):
    provider, model = label.split("/", 1)
    return lambda side: Q(**{f"{side}__provider": provider, f"{side}__model": model})


@dataclass(frozen=True)
class JudgementFilter:
    source: str | None = None
    run: tuple[int, ...] = ()
    runs: tuple[int, ...] = ()
    model: tuple[str, ...] = ()
    judged_by: str | None = None
    judge: str | None = None
    blind: bool | None = None
    kind: str | None = None

    def q(self):
        """A Q over Judgement of everything asked (an empty Q: all)."""
        where = Q()
        if self.source:
            where &= Q(task__source=self.source)
        if self.run:
            where &= self._runs_q()
        if self.runs:
            where &= Q(job_a__run_id__in=self.runs) & (Q(job_b__isnull=True) | Q(job_b__run_id__in=self.runs))
        if self.model:
            sides = [_model_side(label) for label in self.model]
            where &= _either(sides[0]) if len(sides) == 1 else _pair(*sides)
        if self.judge:  # an LLM judge's verdicts (a person's have no judge model): judged_by says no more
            provider, model = self.judge.split("/", 1)
            where &= Q(judge_provider=provider, judge_model=model) & ~Q(judge_model="")
        elif self.judged_by:
            where &= Q(reviewer__isnull=self.judged_by == "judge")
        if self.blind is not None:
            where &= Q(blind=self.blind)
        if self.kind:
            where &= Q(kind=self.kind)
        return where

    def _runs_q(self):
        if len(self.run) == 2:
            return _pair(_run_side(self.run[0]), _run_side(self.run[1]))
        (run_id,) = self.run
        return _either(_run_side(run_id)) | Q(judge_job__run_id=run_id)

    def apply(self, judgements):
        return judgements.filter(self.q())

    def tasks(self, tasks):
        """``tasks`` narrowed for the tasks export: the source, and with ``run`` or
        ``runs`` the tasks those runs have a job on (their outputs or judge jobs)."""
        if self.source:
            tasks = tasks.filter(source=self.source)
        run_ids = set(self.run) | set(self.runs)
        if run_ids:
            tasks = tasks.filter(Exists(LLMJob.objects.filter(task=OuterRef("pk"), run_id__in=run_ids)))
        return tasks

    @property
    def by_runs(self):
        return bool(self.run or self.runs)


def _ids(value, field, most=None):
    """Run ids from ``"3,5"``, a list or a tuple; each must be a run (400 otherwise)."""
    if value in (None, "", (), []):
        return ()
    parts = value.split(",") if isinstance(value, str) else [value] if isinstance(value, int) else list(value)
    ids = []
    for part in parts:
        text = str(part).strip()
        if not text.isdigit() or len(text) > 18:
            raise InvalidInput(f"{field} takes run ids separated by commas", field=field)
        ids.append(int(text))
    ids = tuple(dict.fromkeys(ids))
    if most and len(ids) > most:
        raise InvalidInput(f"{field} takes one run, or two for the verdicts between them", field=field)
    found = set(Run.objects.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [run_id for run_id in ids if run_id not in found]
    if missing:
        raise InvalidInput(f"no run {missing[0]}", field=field)
    return ids


def _labels(value, field, most=2):
    if value in (None, "", (), []):
        return ()
    parts = value.split(",") if isinstance(value, str) else list(value)
    labels = tuple(dict.fromkeys(str(part).strip() for part in parts))
    if len(labels) > most or not all("/" in label and len(label) <= 400 for label in labels):
        message = "provider/model" if most == 1 else "one provider/model, or two for the verdicts between them"
        raise InvalidInput(f"{field} takes {message}", field=field)
    return labels


def build(*, source=None, run=None, runs=None, model=None, judged_by=None, judge=None, blind=None, kind=None):
    """A JudgementFilter from request values (strings or lists), checked: 400 ``invalid`` naming the field."""
    if source is not None and (not isinstance(source, str) or len(source) > MAX_SOURCE):
        raise InvalidInput(f"source must be a task source name of at most {MAX_SOURCE} characters", field="source")
    if judged_by not in (None, "", *JUDGED_BY):
        raise InvalidInput("judged_by is human or judge", field="judged_by")
    if kind not in (None, "", *Judgement.Kind.values):
        raise InvalidInput(f"kind is {' or '.join(Judgement.Kind.values)}", field="kind")
    return JudgementFilter(
        source=source or None,
        run=_ids(run, "run", most=2),
        runs=_ids(runs, "runs"),
        model=_labels(model, "model"),
        judged_by=judged_by or None,
        judge=(_labels(judge, "judge", most=1) or (None,))[0],
        blind=blind,
        kind=kind or None,
    )
