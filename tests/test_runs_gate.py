"""Baselines and the gate: POST /api/runs/<id>/baseline (one per dataset,
marking another moves it), ``manage.py runs compare`` (exit 0, 1 on a
significant regression after Holm, 2 for an unknown or unfinished run;
--baseline, --format json), ``runs create --wait``, and a schedule's firing
compared with the baseline when it ends, raising an alert on a regression
(and resolving it on the next clean firing). The demo: two echo variants
through the real worker, a check the brief one breaks."""

import asyncio
import json

import pytest

from eval.alerts import rules, snapshot, state
from eval.evaluation.compare import scheduled
from eval.metrics import collector
from eval.models import Alert, Run
from eval.worker.service import serve
from tests.helpers import login
from tests.run_fixtures import make_run, settle
from tests.test_commands import fails, run

PASS, FAIL = {"exact": True}, {"exact": False}


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


def post(client, path):
    return client.post(path, "{}", content_type="application/json")


def outputs(run_, tasks, results):
    for task, result in zip(tasks, results, strict=True):
        settle(run_, task, "r" if result == PASS else "x", checks=result)


@pytest.mark.django_db
def test_one_baseline_per_dataset_and_marking_another_moves_it(staff, reviewer, make_task):
    tasks = [make_task(source="ds", reference="r") for _ in range(2)]
    first, second = make_run(staff, selection={"source": "ds"}), make_run(staff)  # second: by its tasks' source
    other = make_run(staff, selection={"source": "elsewhere"})
    for run_ in (first, second):
        outputs(run_, tasks, [PASS, PASS])
    client = login(staff)
    answer = post(client, f"/api/runs/{first.pk}/baseline")
    assert answer.status_code == 200 and answer.json()["baseline"] is True
    assert post(client, f"/api/runs/{other.pk}/baseline").status_code == 200  # another dataset: both stay
    answer = post(client, f"/api/runs/{second.pk}/baseline")
    assert answer.json()["baseline"] is True, answer.content
    assert set(Run.objects.exclude(baseline_of="").values_list("pk", "baseline_of")) == {
        (second.pk, "ds"),
        (other.pk, "elsewhere"),
    }
    assert client.get(f"/api/runs/{first.pk}").json()["baseline"] is False
    refused = post(login(reviewer), f"/api/runs/{first.pk}/baseline")
    assert refused.status_code == 403
    running = make_run(staff, status=Run.Status.RUNNING, selection={"source": "ds"})
    settle(running, tasks[0], "", status="running", finished_at=None)
    assert post(client, f"/api/runs/{running.pk}/baseline").json()["error"]["code"] == "conflict"
    assert post(client, f"/api/runs/{running.pk + 99}/baseline").status_code == 404


@pytest.mark.django_db
def test_runs_compare_exit_codes_and_json(staff, make_task):
    tasks = [make_task(source="ds", reference="r") for _ in range(6)]
    a = make_run(staff, name="base", selection={"source": "ds"})
    same = make_run(staff, name="same", selection={"source": "ds"})
    worse = make_run(staff, name="worse", model="echo-brief", selection={"source": "ds"})
    outputs(a, tasks, [PASS] * 6)
    outputs(same, tasks, [PASS] * 6)
    outputs(worse, tasks, [FAIL] * 5 + [PASS])
    out, _ = run("runs", "compare", str(a.pk), str(same.pk))
    assert "no significant regression" in out and "0 regressions, 0 fixes" in out
    error = fails("runs", "compare", str(a.pk), str(worse.pk))
    assert error.returncode == 1 and "check exact: 5 regressions against 0 fixes" in str(error)
    out, _ = run("runs", "compare", str(a.pk), str(worse.pk), "--alpha", "0.02")  # p = 1/32 > 0.02
    assert "no significant regression" in out
    with pytest.raises(Exception) as caught:  # --format json still exits 1: the JSON is on stdout
        run("runs", "compare", str(a.pk), str(worse.pk), "--format", "json")
    assert caught.value.returncode == 1
    out, _ = run("runs", "compare", str(a.pk), str(same.pk), "--format", "json")
    data = json.loads(out)
    assert data["regressed"] is False and data["a"]["id"] == a.pk and data["tests"][0]["p_holm"] == 1.0
    assert fails("runs", "compare", str(a.pk), "99999").returncode == 2
    assert fails("runs", "compare", str(worse.pk), "--baseline").returncode == 2  # no baseline yet
    a.baseline_of = "ds"
    a.save()
    assert fails("runs", "compare", str(worse.pk), "--baseline").returncode == 1
    assert fails("runs", "compare", str(a.pk)).returncode == 2  # B alone needs --baseline
    unfinished = make_run(staff, status=Run.Status.RUNNING)
    settle(unfinished, tasks[0], "", status="running", finished_at=None)
    assert fails("runs", "compare", str(a.pk), str(unfinished.pk)).returncode == 2


@pytest.mark.django_db
def test_a_schedules_firing_is_compared_with_the_baseline_and_alerts(staff, make_task, settings):
    settings.ALERT_EMAILS = []
    tasks = [make_task(source="ds", reference="r") for _ in range(6)]
    baseline = make_run(staff, name="base", selection={"source": "ds"}, baseline_of="ds")
    outputs(baseline, tasks, [PASS] * 6)
    schedule = make_run(staff, name="nightly", status=Run.Status.SCHEDULED, schedule="0 3 * * *")
    bad = make_run(staff, name="nightly", parent=schedule, selection={"source": "ds"})
    outputs(bad, tasks, [FAIL] * 6)
    assert scheduled.gate_finished() == 1 and scheduled.gate_finished() == 0  # each firing once
    bad.refresh_from_db()
    assert bad.gated_against == baseline and "6 regressions against 0 fixes" in bad.regression
    found = rules.evaluate(snapshot.read(bad.gated_at, 600), bad.gated_at, rules.Limits.from_settings())
    [alert] = [c for c in found if c.rule == rules.RUN_REGRESSION]
    assert alert.key == f"run_regression:{schedule.pk}" and f"firing {bad.pk} regressed" in alert.message
    state.apply(found, bad.gated_at, repeat_s=3600, channels=[])
    assert Alert.objects.get(key=alert.key).active
    gauges = {family.name: family for family in collector.DatabaseCollector().collect()}
    assert gauges["eval_scheduled_runs_regressed"].samples[0].value == 1  # deploy/prometheus-alerts.yml's rule
    good = make_run(staff, name="nightly", parent=schedule, selection={"source": "ds"})
    outputs(good, tasks, [PASS] * 6)
    assert scheduled.gate_finished() == 0
    good.refresh_from_db()
    later = good.gated_at
    found = rules.evaluate(snapshot.read(later, 600), later, rules.Limits.from_settings())
    assert not [c for c in found if c.rule == rules.RUN_REGRESSION]
    state.apply(found, later, repeat_s=3600, channels=[])
    assert not Alert.objects.get(key=alert.key).active  # the clean firing resolved it


@pytest.mark.django_db(transaction=True)
def test_the_demo_two_echo_variants_gate_and_identical_runs_pass(fast_jobs, make_task, staff):
    for n in range(6):
        words = " ".join(f"w{n}{i}" for i in range(6))
        make_task(source="demo-gate", prompt=words, reference=words)
    checks = '[{"type": "exact"}]'
    made = {}
    for name, model in (("verbatim", "echo"), ("verbatim again", "echo"), ("brief", "echo-brief")):
        run("runs", "create", "--name", name, "--provider", "echo", "--model", model, "--source", "demo-gate",
            "--checks", checks, "--user", staff.username)  # fmt: skip
        made[name] = Run.objects.get(name=name).pk
    asyncio.run(serve(once=True))
    out, _ = run("runs", "compare", str(made["verbatim"]), str(made["verbatim again"]))
    assert "no significant regression" in out
    error = fails("runs", "compare", str(made["verbatim"]), str(made["brief"]))
    assert error.returncode == 1 and "check exact: 6 regressions against 0 fixes" in str(error)


@pytest.mark.django_db(transaction=True)
def test_create_wait_returns_when_the_worker_has_ended_the_run(fast_jobs, make_task, staff, worker_thread):
    for _ in range(3):
        make_task(source="wait", prompt="a b c")
    worker = worker_thread()
    out, _ = run(
        "runs", "create", "--name", "waited", "--provider", "echo", "--model", "echo", "--source", "wait", "--wait"
    )
    assert Run.objects.get(name="waited").status == Run.Status.DONE and "done: waited" in out
    worker.stop()  # nothing runs the next one: it cannot end
    error = fails("runs", "create", "--name", "never", "--provider", "echo", "--model", "echo", "--source", "wait",
                  "--wait", "--timeout", "0", "--user", staff.username)  # fmt: skip
    assert error.returncode == 1 and "has not ended" in str(error)
