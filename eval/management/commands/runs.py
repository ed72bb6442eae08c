"""``manage.py runs create|list|show|cancel|launch|compare``: evaluation runs from a shell.

Everything goes through eval/evaluation/runs.py, as from the API. Exit codes:
0 ok, 1 error (unknown run, a refusal: cost not confirmed, over budget, a
state that forbids it; ``create --wait`` not ended in time), 2 usage (a bad
option, provider, model or params).

``runs compare A B`` (or ``runs compare B --baseline``) is a CI gate (DESIGN
"Comparison"): 0 no significant regression, 1 a significant regression
(eval/evaluation/compare/gate.py), 2 an unknown or unfinished run, or no
baseline. ``runs create ... --wait`` waits for the run to end first.
"""

import json
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from eval.evaluation.compare import gate, service, text
from eval.evaluation.errors import ConfirmCost
from eval.evaluation.runs import baselines
from eval.evaluation.runs import services as runs
from eval.jobs.errors import JobError
from eval.models import Run


def _json_option(raw, name):
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise CommandError(f"{name} is not valid JSON: {error}", returncode=2) from None


class Command(BaseCommand):
    help = (
        "Evaluation runs. `runs create --name N --provider P --model M [--params JSON] [--source S] "
        "[--task-status open|done] [--ids ...] [--limit N] [--schedule CRON] [--max-cost USD] [--checks JSON] "
        "[--judge-compare A B | --judge-score R] [--rubric ID] [--swap] [--template ID] [--user NAME] [--yes]`; "
        "`runs list`; "
        "`runs show ID [--json]`; `runs cancel ID`; `runs launch ID [--yes]` (a scheduled run, now); "
        "`runs compare A B [--alpha 0.05] [--format text|json]` or `runs compare B --baseline`: exit 1 on a "
        "significant regression of B, 2 for an unknown or unfinished run. "
        "--yes confirms an estimate above BULK_CONFIRM_COST_USD; `create --wait` waits for the run to end."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="create a run (launched at once unless --schedule)")
        create.add_argument("--name", required=True)
        create.add_argument("--provider", required=True)
        create.add_argument("--model", required=True)
        create.add_argument(
            "--params", default=None, metavar="JSON", help="max_tokens, temperature, system, top_p, stop, seed"
        )
        create.add_argument("--source", default=None)
        create.add_argument("--task-status", choices=["open", "done"], default=None)
        create.add_argument("--ids", nargs="+", type=int, default=None, metavar="ID", help="integer task ids")
        create.add_argument("--limit", type=int, default=None)
        create.add_argument("--schedule", default=None, metavar="CRON")
        create.add_argument("--max-cost", type=float, default=None, metavar="USD")
        create.add_argument("--checks", default=None, metavar="JSON", help='e.g. \'[{"type": "exact"}]\'')
        create.add_argument("--judge-compare", nargs=2, type=int, default=None, metavar=("RUN_A", "RUN_B"))
        create.add_argument("--judge-score", type=int, default=None, metavar="RUN")
        create.add_argument("--rubric", type=int, default=None)
        create.add_argument("--swap", action="store_true")
        create.add_argument("--template", type=int, default=None, metavar="ID", help="a prompt template's id")
        create.add_argument("--user", default=None, metavar="USERNAME", help="the run's creator (and budget)")
        create.add_argument("--yes", "-y", action="store_true", help="confirm the estimated cost")
        create.add_argument("--wait", action="store_true", help="wait for the run (a judge run: its jobs) to end")
        create.add_argument("--timeout", type=float, default=None, metavar="SECONDS", help="with --wait: give up")
        compare = actions.add_parser("compare", help="B against A (or its dataset's baseline): a CI gate")
        compare.add_argument("run_ids", nargs="+", type=int, metavar="RUN", help="A B, or B with --baseline")
        compare.add_argument("--baseline", action="store_true", help="A is the baseline of B's dataset")
        compare.add_argument("--alpha", type=float, default=gate.DEFAULT_ALPHA)
        compare.add_argument("--format", choices=["text", "json"], default="text")
        listing = actions.add_parser("list", help="runs, newest first")
        listing.add_argument("--limit", type=int, default=50)
        show = actions.add_parser("show", help="one run as DESIGN's Run JSON")
        show.add_argument("run_id", type=int)
        show.add_argument("--json", action="store_true")
        actions.add_parser("cancel", help="cancel a run").add_argument("run_id", type=int)
        launch = actions.add_parser("launch", help="launch a scheduled run now (a child run)")
        launch.add_argument("run_id", type=int)
        launch.add_argument("--yes", "-y", action="store_true", help="confirm the estimated cost")

    def handle(self, *args, action, **options):
        try:
            return getattr(self, f"_{action}")(**options)
        except ConfirmCost as error:
            raise CommandError(f"{error.message} (pass --yes to confirm)", returncode=1) from None
        except JobError as error:
            code = 2 if error.code == "invalid" else 1
            raise CommandError(error.message, returncode=code) from None
        except DatabaseError as error:
            raise CommandError(f"database error: {error}", returncode=1) from None

    # --- helpers ----------------------------------------------------------------------
    def _user(self, username):
        if username is None:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"--user: no user named {username!r}", returncode=2)
        return user

    def _get(self, run_id):
        run = Run.objects.select_related("created_by", "rubric").filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"no run {run_id}", returncode=1)
        return run

    @staticmethod
    def _confirmed(call, yes):
        """``call(confirm)``; with --yes, once more confirming the estimate it was refused for."""
        try:
            return call(None)
        except ConfirmCost as refused:
            if not yes:
                raise
            return call(float(refused.estimated))

    def _say(self, run):
        data = runs.run_json(run)
        cost = data["estimated_cost_usd"]
        counts = ", ".join(f"{n} {status}" for status, n in data["counts"].items() if n)
        self.stdout.write(
            f"run {run.pk} {data['status']}: {run.name} ({run.provider}/{run.model}) "
            f"jobs: {counts or 'none'}; estimated {_usd(cost)}, cost so far {_usd(data['cost_usd'])}"
        )

    # --- actions ----------------------------------------------------------------------
    def _create(self, **options):
        data = {"name": options["name"], "provider": options["provider"], "model": options["model"]}
        data["params"] = _json_option(options["params"], "--params")
        data["checks"] = _json_option(options["checks"], "--checks")
        selection = {"source": options["source"], "status": options["task_status"], "ids": options["ids"]}
        selection["limit"] = options["limit"]
        data["tasks"] = {key: value for key, value in selection.items() if value is not None}
        data.update(schedule=options["schedule"], max_cost_usd=options["max_cost"], template=options["template"])
        judge = _judge(options)
        if judge is not None:
            data.update(kind=Run.Kind.JUDGE, judge=judge)
        user = self._user(options["user"])

        def create(confirm):
            return runs.create_run(user=user, data={**data, "confirm_cost_usd": confirm})

        run = self._confirmed(create, options["yes"])
        self._say(run)
        skipped = getattr(run, "skipped", [])
        if skipped:
            self.stdout.write(f"Skipped {len(skipped)} task(s): " + "; ".join(f"{i}: {r}" for i, r in skipped[:20]))
        if options["wait"] and not run.schedule:
            self._say(self._wait(run, options["timeout"]))

    def _wait(self, run, timeout, poll_s=1.0):
        """Until ``run`` has ended (its status follows its jobs; a judge run's, its judged runs' too)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = runs.refresh_status(Run.objects.get(pk=run.pk))
            if run.status in Run.ENDED:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise CommandError(f"run {run.pk} has not ended after {timeout:g} s (it goes on)", returncode=1)
            time.sleep(poll_s)

    def _compare_runs(self, run_ids, baseline):
        if len(run_ids) != (1 if baseline else 2):
            raise CommandError("give runs A and B, or run B with --baseline", returncode=2)
        found = Run.objects.in_bulk(run_ids)
        missing = [run_id for run_id in run_ids if run_id not in found]
        if missing:
            raise CommandError(f"no run {missing[0]}", returncode=2)
        run_b = runs.refresh_status(found[run_ids[-1]])
        run_a = (
            baselines.baseline_of(baselines.dataset_of(run_b)) if baseline else runs.refresh_status(found[run_ids[0]])
        )
        if run_a is None:
            raise CommandError(f"run {run_b.pk}'s dataset has no baseline (POST /api/runs/<id>/baseline)", returncode=2)
        for run in (run_a, run_b):
            if run.status not in Run.ENDED:
                raise CommandError(
                    f"run {run.pk} is {run.status}: wait for it to end (runs create --wait)", returncode=2
                )
        return run_a, run_b

    def _compare(self, *, run_ids, baseline, alpha, format, **options):
        run_a, run_b = self._compare_runs(run_ids, baseline)
        decision = gate.decide(service.build(run_a, run_b), alpha=alpha)
        if format == "json":
            self.stdout.write(_dumps(text.as_json(run_a, run_b, decision), indent=2))
        else:
            self.stdout.write("\n".join(text.lines(run_a, run_b, decision)))
        if decision["regressed"]:
            raise CommandError("; ".join(gate.words(decision)), returncode=1)

    def _list(self, *, limit, **options):
        found = list(Run.objects.select_related("created_by").order_by("-id")[: max(limit, 1)])
        if not found:
            self.stdout.write("No runs.")
        for run in found:
            self._say(run)

    def _show(self, *, run_id, json, **options):
        data = runs.run_json(self._get(run_id))
        if json:
            self.stdout.write(_dumps(data, indent=2))
            return
        for name, value in data.items():
            self.stdout.write(f"{name:20} {_dumps(value) if isinstance(value, dict | list) else value}")

    def _cancel(self, *, run_id, **options):
        self._say(runs.cancel(self._get(run_id), by=None))

    def _launch(self, *, run_id, yes, **options):
        parent = self._get(run_id)
        child = self._confirmed(lambda confirm: runs.launch_now(parent, by=None, confirm_cost_usd=confirm), yes)
        self._say(child)


def _judge(options):
    """The judge block of a judge run (--judge-compare or --judge-score), or None."""
    if not options["judge_compare"] and options["judge_score"] is None:
        return None
    judge = {"swap": options["swap"]}
    if options["rubric"] is not None:
        judge["rubric"] = options["rubric"]
    if options["judge_compare"]:
        judge["compare"] = list(options["judge_compare"])
    else:
        judge["score"] = options["judge_score"]
    return judge


def _dumps(value, **kwargs):
    return json.dumps(value, default=str, ensure_ascii=False, **kwargs)


def _usd(value):
    """Unknown (a model with no price, imported outputs) prints as '-', never $0."""
    return "-" if value is None else f"${value}"
