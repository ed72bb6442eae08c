"""A comparison's gate decision as text for a terminal or a CI log
(``manage.py runs compare``), and as JSON for machines."""

from eval.evaluation.compare.gate import label


def _p(value):
    return f"{value:.3g}"


def lines(run_a, run_b, decision):
    summary = decision["summary"]
    tasks = summary["tasks"]
    out = [
        f"B #{run_b.pk} {run_b.name} ({run_b.provider}/{run_b.model}) against "
        f"A #{run_a.pk} {run_a.name} ({run_a.provider}/{run_a.model})",
        f"tasks compared: {tasks['compared']} (output changed on {tasks['changed_output']}); "
        f"left out, prompt changed: {tasks['prompt_changed']}; "
        f"only in A: {tasks['only_a']}; only in B: {tasks['only_b']}",
    ]
    for test in decision["tests"]:
        verdict = "REGRESSION" if test["significant"] else "ok"
        out.append(
            f"  {label(test)}: {test['regressions']} regressions, {test['fixes']} fixes, "
            f"p = {_p(test['p_value'])}, Holm {_p(test['p_holm'])}: {verdict}"
        )
    if not decision["tests"]:
        out.append("  no check both runs ran alike and no judge compared them: nothing to test")
    if summary["checks_left_out"]:
        out.append("  not compared (one run only, or other settings): " + ", ".join(summary["checks_left_out"]))
    humans = summary["humans"]
    if any(humans.values()):
        out.append(
            f"  reviewers (counted, not tested): A better {humans['a_wins']}, B better {humans['b_wins']}, "
            f"ties {humans['ties']}, both bad {humans['both_bad']}"
        )
    cost, tokens = summary["cost_usd"], summary["tokens"]
    out.append(
        f"cost: A {_usd(cost['a'])}, B {_usd(cost['b'])}; tokens in/out: "
        f"A {_count(tokens['a']['input'])}/{_count(tokens['a']['output'])}, "
        f"B {_count(tokens['b']['input'])}/{_count(tokens['b']['output'])}"
    )
    out.append(
        ("B REGRESSED" if decision["regressed"] else "no significant regression")
        + f" (alpha {decision['alpha']}, Holm across {len(decision['tests'])} test(s))"
    )
    return out


def as_json(run_a, run_b, decision):
    def brief(run):
        return {"id": run.pk, "name": run.name, "provider": run.provider, "model": run.model, "status": run.status}

    return {"a": brief(run_a), "b": brief(run_b), **decision}


def _usd(value):
    """Unknown (no price, imported outputs) is '-', never $0."""
    return "-" if value is None else f"${value:.6f}"


def _count(value):
    return "-" if value is None else str(value)
