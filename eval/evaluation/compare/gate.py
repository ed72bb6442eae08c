"""The gate a CI job or a scheduled run decides on (DESIGN "Comparison"):
B regressed when, for a check or a judge, it has more regressions than
fixes and the one-sided exact binomial p, adjusted with Holm's step-down
correction across all the checks and judges compared, is below ``alpha``.
Holm controls the chance of any false alarm at ``alpha`` whatever the
number of checks, without assuming they are independent."""

from eval.evaluation.compare import service
from eval.evaluation.errors import Conflict
from eval.evaluation.results.stats import holm
from eval.models import Run

DEFAULT_ALPHA = 0.05


class Unfinished(Conflict):
    """A run still running or waiting: its comparison would move under the gate."""


def require_ended(run):
    if run.status not in Run.ENDED:
        raise Unfinished(f"run {run.pk} is {run.status}: compare runs that have ended")


def _tests(summary):
    tests = [("check", c["check"], c["regressions"], c["fixes"], c["p_value"]) for c in summary["checks"]]
    tests += [("judge", v["by"], v["a_wins"], v["b_wins"], v["p_value"]) for v in summary["verdicts"]]
    return tests


def decide(comparison, alpha=DEFAULT_ALPHA):
    """{"regressed": bool, "alpha", "tests": [...], "summary"}: each test with
    its Holm-adjusted p and whether it is a significant regression."""
    summary = service.summary(comparison)
    tests = _tests(summary)
    adjusted = holm([test[4] for test in tests])
    found = []
    for (kind, name, regressions, fixes, p_value), p_holm in zip(tests, adjusted, strict=True):
        significant = regressions > fixes and p_holm < alpha
        found.append(
            {
                "kind": kind,
                "name": name,
                "regressions": regressions,
                "fixes": fixes,
                "p_value": p_value,
                "p_holm": p_holm,
                "significant": significant,
            }
        )
    return {"regressed": any(t["significant"] for t in found), "alpha": alpha, "tests": found, "summary": summary}


def label(test):
    """ "check exact", or a judge's own label ("judge run 4 (echo/echo-judge)")."""
    return f"check {test['name']}" if test["kind"] == "check" else test["name"]


def words(decision):
    """One line per significant regression, for an alert or a log."""
    return [
        f"{label(t)}: {t['regressions']} regressions against {t['fixes']} fixes "
        f"(p = {t['p_value']:.3g}, {t['p_holm']:.3g} after Holm)"
        for t in decision["tests"]
        if t["significant"]
    ]
