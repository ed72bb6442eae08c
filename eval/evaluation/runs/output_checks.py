"""Automatic checks of a run's outputs against the task's reference
(DESIGN "Evaluation"; issue 11 item 5): chosen per run, one result per check
type, computed by the worker as the output succeeds and stored with it in
the same statement (``LLMJob.check_results``: ``{"exact": true, "regex": false}``).

- ``exact``: the output equals the reference, both stripped of surrounding whitespace;
- ``contains``: the (stripped) reference occurs in the output;
- ``regex``: the check's ``pattern`` (else the reference itself) matches somewhere in the output;
- ``json_valid``: the output (stripped) is one JSON document.

A check that needs the reference is left out of the results when the task has
none: "no reference" is not a failure. Python's ``re`` has no timeout, so a
pattern is bounded (MAX_PATTERN characters, refused when the run is created)
and so is the text it searches (MAX_SEARCHED characters of the output).
"""

import json
import re

from eval.evaluation.errors import InvalidInput

TYPES = ("exact", "contains", "regex", "json_valid")
MAX_PATTERN = 500
MAX_SEARCHED = 200_000
_NEEDS_REFERENCE = {"exact", "contains"}


def validate(checks):
    """The run's checks cleaned (``[{"type", "pattern"?}]``), or InvalidInput
    (field ``checks``) naming the first problem. For run creation."""
    if not checks:
        return []
    if not isinstance(checks, list):
        raise InvalidInput("checks must be a list of {type, pattern?} objects", field="checks")
    cleaned, seen = [], set()
    for index, check in enumerate(checks):
        item = _clean_one(check, f"checks[{index}]")
        if item["type"] in seen:
            raise InvalidInput(f"checks[{index}]: {item['type']} is chosen twice", field="checks")
        seen.add(item["type"])
        cleaned.append(item)
    return cleaned


def _clean_one(check, where):
    kind = check.get("type") if isinstance(check, dict) else None
    if kind not in TYPES:
        raise InvalidInput(f"{where}: type must be one of {', '.join(TYPES)}", field="checks")
    if set(check) - {"type", "pattern"}:
        raise InvalidInput(f"{where}: a check has only type and pattern", field="checks")
    pattern = check.get("pattern")
    if pattern in (None, ""):
        return {"type": kind}
    if kind != "regex":
        raise InvalidInput(f"{where}: only a regex check takes a pattern", field="checks")
    _compile(pattern, where)
    return {"type": kind, "pattern": pattern}


def _compile(pattern, where):
    if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN:
        raise InvalidInput(f"{where}: pattern must be text of at most {MAX_PATTERN} characters", field="checks")
    try:
        return re.compile(pattern)
    except re.error as error:
        raise InvalidInput(f"{where}: bad regex: {error}", field="checks") from None


def run_checks(checks, output, reference):
    """``{type: passed}`` for each of ``checks`` that applies to this task."""
    reference = (reference or "").strip()
    results = {}
    for check in checks:
        kind = check["type"]
        if kind in _NEEDS_REFERENCE and not reference:
            continue
        if kind == "regex" and not (check.get("pattern") or reference):
            continue
        results[kind] = _passes(check, output or "", reference)
    return results


def _passes(check, output, reference):
    kind = check["type"]
    if kind == "exact":
        return output.strip() == reference
    if kind == "contains":
        return reference in output
    if kind == "regex":
        return _regex_matches(check.get("pattern") or reference, output)
    return _is_json(output)


def _regex_matches(pattern, output):
    # A run's pattern was checked at creation; a reference used as the pattern was not.
    if len(pattern) > MAX_PATTERN:
        return False
    try:
        compiled = re.compile(pattern)
    except re.error:
        return False
    return compiled.search(output[:MAX_SEARCHED]) is not None


def _is_json(output):
    try:
        json.loads(output.strip())
    except ValueError:
        return False
    return True
