"""``manage.py enqueue_llm_jobs``: queue one bulk LLM job per selected task,
as an evaluation run (a thin alias of ``manage.py runs create``: the run gets
the selected task ids; its jobs are bulk priority and the cost is checked).

Exit codes: 0 ok (also a dry run, nothing selected, or the operator said no),
1 error (unknown task ids, database error, interrupted), 2 usage (bad
provider, model, params or option; confirmation needed but stdin is not a
terminal).
"""

import json
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from eval.evaluation.runs import costs
from eval.evaluation.runs import input as run_input
from eval.evaluation.runs import services as runs
from eval.jobs import create
from eval.jobs.errors import InvalidJob, JobError
from eval.jobs.validation import clean_job_request
from eval.models import LLMJob, Run, Task

CHUNK_SIZE = create.BULK_BATCH
SHOW_SKIPPED = 20


def _id_list(values):
    """``--ids 1 2 3`` and ``--ids 1,2,3`` alike."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


class Command(BaseCommand):
    help = (
        "Queue one bulk (low-priority) LLM job per selected task; interactive jobs from the review page "
        "are still served first. By default the selection is every open task still present in its "
        "source; --ids / --external-ids pick tasks explicitly (whatever their status, unless "
        "--task-status is given). Asks for confirmation unless --yes; refuses (exit 2) when it would "
        "have to ask and stdin is not a terminal."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True, help="provider name, e.g. anthropic, gemini, echo")
        parser.add_argument("--model", required=True, help="a model the provider offers (see /api/models)")
        parser.add_argument(
            "--params",
            default=None,
            metavar="JSON",
            help=(
                "job params as a JSON object: max_tokens, temperature, system, top_p, stop, seed "
                "(e.g. '{\"max_tokens\": 512}')"
            ),
        )
        parser.add_argument(
            "--task-status",
            choices=["open", "done", "all"],
            default=None,
            help="tasks with this status (default: open; with --ids/--external-ids: any)",
        )
        parser.add_argument(
            "--ids",
            nargs="+",
            default=None,
            metavar="ID",
            help="task ids: the integer ids of /tasks/<id>/ and the API (space or comma separated)",
        )
        parser.add_argument(
            "--external-ids",
            nargs="+",
            default=None,
            metavar="EXTERNAL_ID",
            help="task ids as given by their source (the source record's `id`; space separated); narrow with --source",
        )
        parser.add_argument("--source", default=None, help="only tasks synced from this source name")
        parser.add_argument(
            "--include-missing",
            action="store_true",
            help="also tasks that vanished from their source (always included when picked by id)",
        )
        parser.add_argument(
            "--skip-existing",
            action="store_true",
            help="skip tasks that already have a queued, running or succeeded job for this provider and model",
        )
        parser.add_argument("--limit", type=int, default=None, metavar="N", help="at most N tasks (lowest ids first)")
        parser.add_argument("--user", default=None, metavar="USERNAME", help="record the jobs as created by this user")
        parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help=f"jobs per transaction ({CHUNK_SIZE})")
        parser.add_argument("--dry-run", action="store_true", help="print how many jobs would be created; create none")
        parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    # --- checks ---------------------------------------------------------------------
    def _usage(self, message):
        return CommandError(message, returncode=2)

    def _params(self, raw):
        if raw is None:
            return None
        try:
            params = json.loads(raw)
        except json.JSONDecodeError as error:
            raise self._usage(f"--params is not valid JSON: {error}") from None
        if not isinstance(params, dict):
            raise self._usage("--params must be a JSON object, e.g. '{\"max_tokens\": 512}'")
        return params

    def _validate_request(self, provider, model, params):
        """Refuse a bad provider, model or params before selecting anything."""
        try:
            cleaned = clean_job_request(task=Task(prompt="probe"), provider=provider, model=model, params=params)
        except InvalidJob as error:
            raise self._usage(f"invalid job request: {error.message}") from None
        return cleaned

    def _user(self, username):
        if username is None:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise self._usage(f"--user: no user named {username!r}")
        return user

    def _selection(self, options):
        """The task ids to queue, chosen by the runs' own rule (run_input.selected_tasks).
        This command's default is the open tasks, unless tasks are picked by id."""
        picked = self._picked_ids(options)
        selection = {"source": options["source"], "limit": options["limit"]}
        if picked is not None:
            selection["ids"] = sorted(picked)
        status = options["task_status"] or ("all" if picked is not None else "open")
        if status != "all":
            selection["status"] = status
        skip = (options["provider"], options["model"]) if options["skip_existing"] else None
        tasks = run_input.selected_tasks(selection, include_missing=options["include_missing"], skip_done_by=skip)
        return list(tasks.values_list("id", flat=True))

    def _picked_ids(self, options):
        """The ids named by --ids and --external-ids (both: those named by both), or None."""
        picked = None
        if options["ids"] is not None:
            picked = self._known_ids(options["ids"])
        if options["external_ids"] is not None:
            by_external = self._known_external_ids(options["external_ids"], options["source"])
            picked = by_external if picked is None else picked & by_external
        return picked

    def _known_ids(self, raw_ids):
        raw = _id_list(raw_ids)
        try:
            ids = {int(value) for value in raw}
        except ValueError:
            bad = next(value for value in raw if not value.isdigit())
            raise self._usage(f"--ids takes integer task ids (got {bad!r}); use --external-ids") from None
        found = set(Task.objects.filter(id__in=ids).values_list("id", flat=True))
        if ids - found:
            missing = ", ".join(str(i) for i in sorted(ids - found)[:SHOW_SKIPPED])
            raise CommandError(f"unknown task id(s): {missing}", returncode=1)
        return ids

    @staticmethod
    def _known_external_ids(external_ids, source):
        """The task ids of these external ids (in ``source`` when given); an unknown one is an error."""
        external = set(external_ids)
        scoped = Task.objects.filter(external_id__in=external)
        if source:
            scoped = scoped.filter(source=source)
        found = dict(scoped.values_list("id", "external_id"))
        if external - set(found.values()):
            missing = ", ".join(sorted(external - set(found.values()))[:SHOW_SKIPPED])
            raise CommandError(f"unknown external id(s): {missing}", returncode=1)
        return set(found)

    def _confirm(self, count, what, stdin):
        if not stdin.isatty():
            raise self._usage(
                f"refusing to create {count} bulk job(s) for {what} without confirmation: "
                "stdin is not a terminal (pass --yes)"
            )
        self.stdout.write(f"Create {count} bulk job(s) for {what}? [y/N] ", ending="")
        self.stdout.flush()
        answer = stdin.readline().strip().lower()
        return answer in {"y", "yes"}

    # --- the command ----------------------------------------------------------------
    def handle(self, *args, **options):
        provider, model = options["provider"], options["model"]
        self._check_numbers(options)
        params = self._params(options["params"])
        cleaned = self._validate_request(provider, model, params)
        user = self._user(options["user"])
        try:
            ids = self._selection(options)
        except DatabaseError as error:
            raise CommandError(f"database error: {error}", returncode=1) from None

        what = f"{provider}/{model} ({', '.join(f'{k}={v!r}' for k, v in cleaned.items())})"
        if not ids:
            self.stdout.write("No tasks selected; nothing to do.")
            return
        cost = self._estimate(provider, model, cleaned, ids)
        what_cost = f"{what}, estimated ${cost}"
        if options["dry_run"]:
            self.stdout.write(f"Dry run: would create {len(ids)} bulk job(s) for {what_cost}.")
            return
        if not options["yes"] and not self._confirm(len(ids), what_cost, options.get("stdin") or sys.stdin):
            self.stdout.write("Cancelled; no jobs created.")
            return
        data = {"name": f"enqueue_llm_jobs {provider}/{model}", "provider": provider, "model": model}
        data.update(params=params, tasks={"ids": ids}, confirm_cost_usd=cost)
        try:
            run = runs.create_run(user=user, data=data, batch_size=options["chunk_size"])
        except JobError as error:
            raise CommandError(error.message, returncode=1) from None
        except DatabaseError as error:
            raise CommandError(f"database error: {error}", returncode=1) from None
        created = LLMJob.objects.filter(run=run).count()
        self.stdout.write(f"Created {created} bulk job(s) for {what} as run {run.pk}.")
        self._report_skipped(run.skipped)

    @staticmethod
    def _estimate(provider, model, cleaned, ids):
        probe = Run(provider=provider, model=model, params=cleaned, selection={"ids": ids})
        return costs.estimate(probe)[0].usd

    def _check_numbers(self, options):
        if options["limit"] is not None and options["limit"] < 1:
            raise self._usage("--limit must be at least 1")
        if options["chunk_size"] < 1:
            raise self._usage("--chunk-size must be at least 1")

    def _report_skipped(self, skipped):
        if not skipped:
            return
        self.stdout.write(f"Skipped {len(skipped)} task(s):")
        for task_id, reason in skipped[:SHOW_SKIPPED]:
            self.stdout.write(f"  task {task_id}: {reason}")
        if len(skipped) > SHOW_SKIPPED:
            self.stdout.write(f"  ... and {len(skipped) - SHOW_SKIPPED} more")
