"""Rows of the ``judgements`` and ``pairs`` exports.

``judgements``: one row per current judgement (withdrawn and superseded
ones never; stale ones only with ``include_stale``), human and LLM judge
alike, outputs of hidden jobs included and marked ``hidden``.

``pairs``: DPO-ready preference pairs from current pairwise judgements whose
verdict picks a side (ties and both-bad left out), neither output hidden:
``prompt`` is the task's prompt now (the one judged, unless a stale
judgement is let in), ``chosen``/``rejected`` the two outputs,
``judged_by`` the reviewer's username or ``llm:<provider>/<model>``.
"""

from django.db.models import F, TextField
from django.db.models.functions import Cast

from eval.evaluation.exports.selection import BATCH_SIZE, counted, is_stale, judged_by, keyset, model_label, visible
from eval.models import Judgement

JUDGEMENT_COLUMNS = (
    "id",
    "kind",
    "task",
    "source",
    "jobs",
    "models",
    "verdict",
    "answers",
    "notes",
    "blind",
    "shown_left",
    "stale",
    "hidden",
    "rubric",
    "reviewer",
    "judge_model",
    "created_at",
)
JUDGEMENT_RAW = ("answers",)  # columns holding JSON text: the database's, never decoded
# ``messages``: the task's conversation (null for a one-prompt task; its ``prompt`` is then the last user turn).
PAIR_COLUMNS = ("prompt", "chosen", "rejected", "chosen_model", "rejected_model", "task", "judged_by", "messages")

_JUDGEMENT_FIELDS = (
    "id",
    "kind",
    "task_id",
    "task__source",
    "task__prompt_hash",
    "prompt_hash",
    "job_a_id",
    "job_b_id",
    "job_a__provider",
    "job_a__model",
    "job_a__hidden",
    "job_b__provider",
    "job_b__model",
    "job_b__hidden",
    "verdict",
    "answers_text",
    "notes",
    "blind",
    "shown_left_id",
    "rubric__name",
    "rubric__version",
    "reviewer__username",
    "judge_provider",
    "judge_model",
    "created_at",
)
_PAIR_FIELDS = (
    "id",
    "task_id",
    "task__prompt",
    "task__prompt_hash",
    "prompt_hash",
    "verdict",
    "job_a__output",
    "job_a__provider",
    "job_a__model",
    "job_b__output",
    "job_b__provider",
    "job_b__model",
    "reviewer__username",
    "judge_provider",
    "judge_model",
    "task__messages",
)


def _text(value):
    return str(value) if value is not None else None


def judgement_row(row):
    pairwise = row["job_b_id"] is not None
    jobs = [str(row["job_a_id"])] + ([str(row["job_b_id"])] if pairwise else [])
    models = [model_label(row["job_a__provider"], row["job_a__model"])]
    if pairwise:
        models.append(model_label(row["job_b__provider"], row["job_b__model"]))
    judge = model_label(row["judge_provider"], row["judge_model"]) if not row["reviewer__username"] else None
    return (  # in the columns' order
        row["id"],
        row["kind"],
        row["task_id"],
        row["task__source"],
        jobs,
        models,
        row["verdict"] or None,
        row["answers_text"],
        row["notes"],
        row["blind"],
        _text(row["shown_left_id"]),
        is_stale(row),
        bool(row["job_a__hidden"] or row["job_b__hidden"]),
        f"{row['rubric__name']} v{row['rubric__version']}",
        row["reviewer__username"],
        judge,
        row["created_at"].isoformat(),
    )


def judgement_rows(scope=None, include_stale=False, batch_size=BATCH_SIZE):
    queryset = counted(scope).annotate(answers_text=Cast("answers", TextField()))
    for batch in keyset(queryset, _JUDGEMENT_FIELDS, batch_size):
        rows = [judgement_row(row) for row in batch if include_stale or not is_stale(row)]
        if rows:
            yield rows


def pair_row(row):
    a = (row["job_a__output"], model_label(row["job_a__provider"], row["job_a__model"]))
    b = (row["job_b__output"], model_label(row["job_b__provider"], row["job_b__model"]))
    (chosen, chosen_model), (rejected, rejected_model) = (a, b) if row["verdict"] == Judgement.Verdict.A else (b, a)
    return (  # in the columns' order
        row["task__prompt"],
        chosen,
        rejected,
        chosen_model,
        rejected_model,
        row["task_id"],
        judged_by(row),
        row["task__messages"],
    )


def _pairs(scope):
    return counted(scope).filter(
        visible(), kind=Judgement.Kind.PAIRWISE, verdict__in=[Judgement.Verdict.A, Judgement.Verdict.B]
    )


def pair_rows(scope=None, include_stale=False, batch_size=BATCH_SIZE):
    queryset = _pairs(scope)
    for batch in keyset(queryset, _PAIR_FIELDS, batch_size):
        rows = [pair_row(row) for row in batch if include_stale or not is_stale(row)]
        if rows:
            yield rows


def pair_jobs(scope=None):
    """The jobs whose outputs and models the ``pairs`` export shows (stale ones included),
    as ``seen_job`` rows for seen.mark_selected."""
    queryset = _pairs(scope).order_by()
    return queryset.values(seen_job=F("job_a_id")).union(queryset.values(seen_job=F("job_b_id")))
