"""ETags for the poll and for single jobs.

A job's ``version`` goes up on every visible change, so (count, sum, max) of
a task's job versions changes whenever anything in the poll answer would.
The tag also names the caller (``can_cancel``/``can_retry`` depend on who
asks) and the cut length, so a settings change never serves a stale 304.
"""

from django.conf import settings
from django.http import HttpResponseNotModified

from eval import access


def who(user):
    """The caller's part of a tag: answers differ by user and by staff (what they may do)."""
    return f"u{user.pk}{'s' if access.is_staff(user) else ''}"


def poll_etag(user, task_id, state):
    count, total, top, prompt_hash = state
    return f'"t{task_id}-{count}-{total}-{top}-p{prompt_hash[:12]}-{who(user)}-c{settings.POLL_OUTPUT_CHARS}"'


def poll_state_of_rows(rows):
    versions = [row["version"] for row in rows]
    prompt_hash = rows[0]["task_prompt_hash"] if rows else ""
    return len(versions), sum(versions), max(versions, default=0), prompt_hash


def job_etag(user, row, output_from=0):
    prompt = row["task_prompt_hash"][:12]  # from_current_prompt changes with it
    return f'"j{row["id"].hex}-{row["version"]}-p{prompt}-{who(user)}-f{output_from}"'


def matches(request, etag):
    header = request.META.get("HTTP_IF_NONE_MATCH")
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in candidates


def not_modified(etag):
    response = HttpResponseNotModified()
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


def tag(response, etag):
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response
