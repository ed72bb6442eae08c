"""Outputs produced elsewhere, uploaded with a dataset: a record's
``outputs`` (``[{"label": str, "text": str}]``).

Each label is one run of kind ``imported`` in the dataset (provider
``imported``, model the label, created on first sight); each output is one
succeeded ``generate`` job of that run, pinned to the task's prompt hash, so
it is reviewed, paired, judged, compared and counted like any model's.
An output is new when its run has no job for the task yet, or the latest one
holds another text or was made from another prompt: then a new job is made
(the old one, and the judgements pinned to it, stay). The same text again
changes nothing.
"""

import hashlib
import uuid

from django.db import connection

from eval.models import JobStatus, LLMJob, Run, Task
from eval.sync import job_sql

PROVIDER = "imported"
MAX_LABEL = 100  # LLMJob.model max_length
MAX_OUTPUTS = 50  # per record
MAX_OUTPUT_CHARS = 1_000_000


def output_hash(text):
    """As the job engine hashes an output (eval/jobs/transitions.output_hash)."""
    return hashlib.sha256(text.encode()).hexdigest() if text else ""


def take(data):
    """(the record without ``outputs``, [(label, text)] or None, error or None)."""
    if not isinstance(data, dict) or "outputs" not in data:
        return data, None, None
    data = dict(data)
    value = data.pop("outputs")
    if value is None:
        return data, None, None
    if not isinstance(value, list) or len(value) > MAX_OUTPUTS:
        return data, None, f"'outputs' must be a list of at most {MAX_OUTPUTS} {{'label', 'text'}} objects"
    outputs, labels = [], set()
    for number, item in enumerate(value, 1):
        error = _check(item)
        if error is None and item["label"] in labels:
            error = f"label {item['label']!r} comes twice"
        if error is not None:
            return data, None, f"'outputs' item {number}: {error}"
        labels.add(item["label"])
        outputs.append((item["label"], item["text"]))
    return data, outputs, None


def _check(item):
    if not isinstance(item, dict) or set(item) != {"label", "text"}:
        return "must be an object with exactly 'label' and 'text'"
    label, text = item["label"], item["text"]
    if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL or label != label.strip():
        return f"'label' must be a non-blank string of at most {MAX_LABEL} characters, no outer spaces"
    if not isinstance(text, str) or len(text) > MAX_OUTPUT_CHARS:
        return f"'text' must be a string of at most {MAX_OUTPUT_CHARS} characters"
    if "\x00" in label or "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode()
    except UnicodeEncodeError:
        return "holds text that is not valid Unicode (a lone surrogate)"
    return None


def runs_of(dataset):
    """{label: run id} of the dataset's imported runs."""
    runs = Run.objects.filter(kind=Run.Kind.IMPORTED, selection__source=dataset).order_by("id")
    return {model: pk for model, pk in runs.values_list("model", "id")}


def changed(dataset, runs, items):
    """The outputs among ``items`` ([(external_id, prompt_hash, [(label, text)])]) that
    would make a job: [(external_id, label, text, output hash, prompt hash)]."""
    latest = {}
    known = [runs[label] for _, _, outputs in items for label, _ in outputs if label in runs]
    if known:
        jobs = LLMJob.objects.filter(
            run_id__in=set(known), task__source=dataset, task__external_id__in=[item[0] for item in items]
        )
        columns = ("run_id", "task__external_id", "output_hash", "prompt_hash")
        for run_id, external_id, digest, prompt_hash in jobs.order_by("created_at", "id").values_list(*columns):
            latest[(run_id, external_id)] = (digest, prompt_hash)
    result = []
    for external_id, prompt_hash, outputs in items:
        for label, text in outputs:
            digest = output_hash(text)
            if latest.get((runs.get(label), external_id)) != (digest, prompt_hash):
                result.append((external_id, label, text, digest, prompt_hash))
    return result


def _run(dataset, label, runs, user, now):
    if label not in runs:
        run = Run.objects.create(
            name=label,
            kind=Run.Kind.IMPORTED,
            provider=PROVIDER,
            model=label,
            selection={"source": dataset},
            created_by=user,
            status=Run.Status.DONE,
            launched_at=now,
            finished_at=now,
        )
        runs[label] = run.pk
    return runs[label]


def write(dataset, runs, rows, user, now):
    """Jobs for ``rows`` (from ``changed``); returns the run ids they went to."""
    tasks = dict(
        Task.objects.filter(source=dataset, external_id__in={row[0] for row in rows}).values_list("external_id", "id")
    )
    common = {
        "kind": LLMJob.Kind.GENERATE,
        "created_by_id": user.pk if user is not None else None,
        "provider": PROVIDER,
        "priority": LLMJob.Priority.BULK,
        "status": JobStatus.SUCCEEDED,
        "progress": 100,
        "message": "Imported",
        "stop_reason": "imported",
        "attempts": 0,
        "max_attempts": 0,
        "available_at": now,
        "started_at": now,
        "finished_at": now,
        "published_at": now,  # nothing to deliver: never republished
        "created_at": now,
        "updated_at": now,
    }
    jobs = [
        {
            "id": uuid.uuid4(),
            "task_id": tasks[external_id],
            "model": label,
            "run_id": _run(dataset, label, runs, user, now),
            "prompt_hash": prompt_hash,
            "output": text,
            "output_hash": digest,
        }
        for external_id, label, text, digest, prompt_hash in rows
    ]
    if connection.vendor == "postgresql":
        job_sql.insert_jobs(common, jobs)
    else:  # SQLite: the ORM's bulk insert (executemany in C) is quick enough
        LLMJob.objects.bulk_create([LLMJob(**common, **job) for job in jobs], batch_size=500)
    return {job["run_id"] for job in jobs}
