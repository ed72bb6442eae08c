"""Task sync: each source kind, malformed records, vanished tasks, dry run, the command."""

import io
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from eval.jobs import create
from eval.models import DatasetVersion, LLMJob, Review, Task
from eval.sync import SourceError, sync_tasks
from eval.sync import formats as sync_formats

pytestmark = pytest.mark.django_db


def write_jsonl(path, records, extra_lines=()):
    lines = [json.dumps(record) for record in records]
    lines.extend(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def records(n, prefix="t", **fields):
    return [{"id": f"{prefix}{i}", "prompt": f"prompt {i}", "title": f"Title {i}", **fields} for i in range(n)]


def counts(result):
    return result.counts()


# --- JSONL -------------------------------------------------------------------------


def test_jsonl_first_pass_then_unchanged_then_updated(tmp_path):
    path = write_jsonl(tmp_path / "evalset.jsonl", records(3, reference="ref", metadata={"lang": "en"}))
    result = sync_tasks(path)
    assert result.source == "evalset"
    assert counts(result) == {"created": 3, "updated": 0, "unchanged": 0, "invalid": 0, "missing": 0, "restored": 0}
    task = Task.objects.get(source="evalset", external_id="t1")
    assert (task.title, task.prompt, task.reference, task.metadata) == ("Title 1", "prompt 1", "ref", {"lang": "en"})
    assert task.status == "open" and task.missing_since is None and len(task.content_hash) == 64

    stamps = dict(Task.objects.values_list("external_id", "updated_at"))
    again = sync_tasks(path)
    assert counts(again)["unchanged"] == 3 and again.written == 0
    assert dict(Task.objects.values_list("external_id", "updated_at")) == stamps  # no row written

    changed = records(3, reference="ref", metadata={"lang": "en"})
    changed[2]["prompt"] = "a new prompt"
    Task.objects.filter(external_id="t2").update(status="done")
    write_jsonl(path, changed)
    third = sync_tasks(path)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 2)
    task = Task.objects.get(external_id="t2")
    assert task.prompt == "a new prompt"
    assert task.status == "done"  # a reviewer's state is not the source's to change
    assert task.created_at < task.updated_at


def test_jsonl_malformed_records_are_skipped_with_line_and_reason(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"id": "ok1", "prompt": "fine"}),
                "{not json",
                json.dumps({"prompt": "no id"}),
                json.dumps({"id": "no-prompt"}),
                "",
                json.dumps(["a", "list"]),
                json.dumps({"id": True, "prompt": "boolean id"}),
                json.dumps({"id": "meta", "prompt": "p", "metadata": [1]}),
                json.dumps({"id": "nul", "prompt": "a\u0000b"}),
                json.dumps({"id": "ok1", "prompt": "duplicate"}),
                json.dumps({"id": 42, "prompt": "integer id is fine", "extra": "kept"}),
                json.dumps({"id": "long-title", "prompt": "p", "title": "x" * 501}),
            ]
        )
    )
    result = sync_tasks(path)
    assert (result.created, result.invalid) == (2, 9)
    reasons = dict(result.skipped)
    assert reasons["line 2"].startswith("invalid JSON")
    assert reasons["line 3"] == "missing 'id'"
    assert reasons["line 4"] == "missing 'prompt'"
    assert "not a JSON object" in reasons["line 6"]
    assert "'id' must be a string or an integer" in reasons["line 7"]
    assert "'metadata' must be a JSON object" in reasons["line 8"]
    assert "NUL" in reasons["line 9"]
    assert "duplicate id 'ok1'" in reasons["line 10"]
    assert "longer than 500" in reasons["line 12"]
    assert "line 5" not in reasons  # a blank line is not a record
    assert Task.objects.get(external_id="ok1").prompt == "fine"
    assert Task.objects.get(external_id="42").metadata == {"extra": "kept"}


def test_invalid_record_with_an_id_keeps_its_task(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", records(2))
    sync_tasks(path)
    write_jsonl(path, [{"id": "t0", "prompt": ""}, records(2)[1]])
    result = sync_tasks(path)
    assert (result.invalid, result.missing, result.unchanged) == (1, 0, 1)
    task = Task.objects.get(external_id="t0")
    assert task.prompt == "prompt 0" and task.missing_since is None


# --- vanished tasks ----------------------------------------------------------------


def test_vanished_task_gets_missing_since_and_keeps_reviews_and_jobs(tmp_path, reviewer):
    path = write_jsonl(tmp_path / "set.jsonl", records(3))
    sync_tasks(path)
    gone = Task.objects.get(source="set", external_id="t1")
    Review.objects.create(task=gone, reviewer=reviewer, rating=4)
    job, _ = create.create_job(task=gone, provider="echo", model="echo", created_by=reviewer)
    other = Task.objects.create(source="elsewhere", external_id="t9", prompt="not this source's task")

    write_jsonl(path, [records(3)[0], records(3)[2]])
    result = sync_tasks(path)
    assert (result.missing, result.unchanged) == (1, 2)
    gone.refresh_from_db()
    assert gone.missing_since is not None
    assert Review.objects.filter(task=gone).exists() and LLMJob.objects.filter(pk=job.pk).exists()
    other.refresh_from_db()
    assert other.missing_since is None  # only the synced source's tasks can go missing
    assert Task.objects.filter(missing_since__isnull=False).count() == 1

    first_seen_missing = gone.missing_since
    assert sync_tasks(path).missing == 0  # already marked: not marked again
    gone.refresh_from_db()
    assert gone.missing_since == first_seen_missing

    write_jsonl(path, records(3))
    back = sync_tasks(path)
    assert (back.restored, back.unchanged, back.updated) == (1, 3, 0)
    gone.refresh_from_db()
    assert gone.missing_since is None


def test_reappearing_task_with_new_content_is_updated_and_restored(tmp_path):
    path = write_jsonl(tmp_path / "set.jsonl", records(2))
    sync_tasks(path)
    write_jsonl(path, records(1))
    assert sync_tasks(path).missing == 1
    changed = records(2)
    changed[1]["prompt"] = "changed while away"
    write_jsonl(path, changed)
    result = sync_tasks(path)
    assert (result.updated, result.restored) == (1, 1)
    task = Task.objects.get(external_id="t1")
    assert task.missing_since is None and task.prompt == "changed while away"


def test_unreadable_source_marks_nothing_missing(tmp_path):
    path = write_jsonl(tmp_path / "set.jsonl", records(2))
    sync_tasks(path)
    path.unlink()
    with pytest.raises(SourceError, match="no such file"):
        sync_tasks(path)
    assert not Task.objects.filter(missing_since__isnull=False).exists()


def test_source_name_setting_wins(tmp_path, settings):
    settings.TASK_SOURCE_NAME = "prod-evals"
    result = sync_tasks(write_jsonl(tmp_path / "export-2024.jsonl", records(1)))
    assert result.source == "prod-evals"
    assert Task.objects.get().source == "prod-evals"


# --- dry run -----------------------------------------------------------------------


def test_dry_run_writes_nothing(tmp_path):
    path = write_jsonl(tmp_path / "set.jsonl", records(3))
    result = sync_tasks(path, dry_run=True)
    assert (result.created, result.dry_run) == (3, True)
    assert not Task.objects.exists()

    sync_tasks(path)
    before = list(Task.objects.order_by("id").values())
    changed = records(2)
    changed[0]["prompt"] = "new"
    write_jsonl(path, [*changed, {"id": "new", "prompt": "p"}])
    result = sync_tasks(path, dry_run=True)
    assert counts(result) == {"created": 1, "updated": 1, "unchanged": 1, "invalid": 0, "missing": 1, "restored": 0}
    assert list(Task.objects.order_by("id").values()) == before


# --- CSV ---------------------------------------------------------------------------


def test_csv_with_extra_columns_multiline_fields_and_bad_rows(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_text(
        "\ufeffid,prompt,title,reference,lang,metadata\r\n"
        'c1,"a prompt\nover two lines",First,ref,en,"{""difficulty"": 3}"\r\n'
        "c2,,No prompt,,fr,\r\n"
        "c3,p3,Third,,de,,surplus\r\n"
        "c4,p4,Fourth,,it,{broken\r\n"
        "c5,p5,,,,\r\n",
        encoding="utf-8",
    )
    result = sync_tasks(path)
    assert result.source == "sheet"
    assert (result.created, result.invalid) == (2, 3)
    reasons = dict(result.skipped)
    assert reasons["line 4"] == "missing 'prompt'"  # the multi-line record took lines 2-3
    assert "7 fields but the header has 6" in reasons["line 5"]
    assert "'metadata' is not valid JSON" in reasons["line 6"]
    first = Task.objects.get(external_id="c1")
    assert first.prompt == "a prompt\nover two lines"
    assert first.metadata == {"lang": "en", "difficulty": 3}
    assert Task.objects.get(external_id="c5").metadata == {"lang": ""}


def test_csv_without_required_columns_is_an_error(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("name,text\na,b\n")
    with pytest.raises(SourceError, match="'id' and 'prompt'"):
        sync_tasks(path)


# --- JSON file and directory ---------------------------------------------------------


def test_json_file_array_and_tasks_object(tmp_path):
    array = tmp_path / "arr.json"
    array.write_text(json.dumps([*records(2), "junk"]))
    result = sync_tasks(array)
    assert (result.source, result.created, result.skipped) == ("arr", 2, [("item 3", "not a JSON object (str)")])
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"version": {"n": [1, 2]}, "tasks": records(3), "after": True}))
    assert sync_tasks(wrapped).created == 3


def test_json_stream_across_tiny_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(sync_formats, "CHUNK", 3)
    data = [{"id": i, "prompt": "p" * (i + 1), "metadata": {"n": 12345678 + i, "x": [1.5, None]}} for i in range(20)]
    path = tmp_path / "tiny.json"
    path.write_text(" \n" + json.dumps({"tasks": data}, indent=1))
    result = sync_tasks(path)
    assert (result.created, result.invalid) == (20, 0)
    assert Task.objects.get(external_id="19").metadata == {"n": 12345697, "x": [1.5, None]}


def test_broken_json_document_is_an_error_and_marks_nothing(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(records(2)))
    sync_tasks(path)
    path.write_text(json.dumps(records(1))[:-5])
    with pytest.raises(SourceError, match="invalid JSON|expected"):
        sync_tasks(path)
    assert not Task.objects.filter(missing_since__isnull=False).exists()
    path.write_text(json.dumps({"items": []}))
    with pytest.raises(SourceError, match='no "tasks" array'):
        sync_tasks(path)


def test_directory_is_one_source_read_in_name_order(tmp_path):
    folder = tmp_path / "suite"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", records(2, prefix="a"))
    (folder / "b.csv").write_text("id,prompt\nb0,p\na1,duplicate of a.jsonl\n")
    (folder / "c.json").write_text(json.dumps({"tasks": [{"id": "c0", "prompt": "p"}]}))
    (folder / "notes.txt").write_text("ignored")
    (folder / ".hidden.jsonl").write_text("ignored too")
    result = sync_tasks(folder)
    assert result.source == "suite"
    assert (result.created, result.invalid) == (4, 1)
    assert result.skipped[0][0] == "b.csv line 3"
    assert set(Task.objects.values_list("source", flat=True)) == {"suite"}

    (folder / "c.json").unlink()
    result = sync_tasks(folder)
    assert result.missing == 1
    assert Task.objects.get(external_id="c0").missing_since is not None


def test_unknown_file_type(tmp_path):
    path = tmp_path / "tasks.txt"
    path.write_text("{}")
    with pytest.raises(SourceError, match="unknown file type"):
        sync_tasks(path)


# --- HTTP ----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    routes = {}

    def do_GET(self):
        route = self.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_error(404)
            return
        status, body, declared_length = route
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(declared_length or len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_source():
    routes = {}
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def serve(path, payload, status=200, declared_length=None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        routes[path] = (status, body, declared_length)
        return base + path

    yield serve
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_http_json_array_and_tasks_object(http_source):
    url = http_source("/api/v1/eval-tasks", [*records(3), {"id": "x"}])
    result = sync_tasks(url + "?token=secret")
    assert result.source == "eval-tasks"
    assert (result.created, result.invalid) == (3, 1)
    assert result.skipped == [("item 4", "missing 'prompt'")]
    assert "secret" not in result.location

    url = http_source("/export", {"count": 2, "tasks": records(2)})
    result = sync_tasks(url)
    assert (result.source, result.created) == ("export", 2)


def test_http_vanished_task_and_errors(http_source):
    url = http_source("/tasks.json", records(3))
    sync_tasks(url)
    http_source("/tasks.json", records(2))
    result = sync_tasks(url)
    assert (result.source, result.missing, result.unchanged) == ("tasks", 1, 2)

    http_source("/tasks.json", b"oops", status=500)
    with pytest.raises(SourceError, match="HTTP 500"):
        sync_tasks(url)
    cut = json.dumps(records(50)).encode()
    http_source("/tasks.json", cut[:200], declared_length=len(cut))  # the connection ends early
    with pytest.raises(SourceError):
        sync_tasks(url)
    assert Task.objects.filter(missing_since__isnull=False).count() == 1  # nothing more marked


def test_http_jsonl_by_extension(http_source):
    body = "\n".join(json.dumps(record) for record in records(2)).encode()
    url = http_source("/dump.jsonl", body)
    assert sync_tasks(url).created == 2


# --- the command ----------------------------------------------------------------------


def test_command_prints_counts_and_skipped_lines(tmp_path):
    path = write_jsonl(tmp_path / "cmd.jsonl", records(2), extra_lines=['{"id": "x"}'])
    out = io.StringIO()
    call_command("sync_tasks", source=str(path), stdout=out)
    text = out.getvalue()
    assert "created=2" in text and "invalid=1" in text
    assert "line 3: missing 'prompt'" in text

    out = io.StringIO()
    call_command("sync_tasks", "--dry-run", source=str(path), stdout=out)
    assert "unchanged=2" in out.getvalue() and "dry run" in out.getvalue()


def test_command_uses_task_source_setting(tmp_path, settings):
    settings.TASK_SOURCE = str(write_jsonl(tmp_path / "configured.jsonl", records(1)))
    out = io.StringIO()
    call_command("sync_tasks", stdout=out)
    assert Task.objects.get().source == "configured"


def test_command_exit_codes(tmp_path, settings):
    settings.TASK_SOURCE = ""
    with pytest.raises(CommandError) as usage:
        call_command("sync_tasks")
    assert usage.value.returncode == 2
    with pytest.raises(CommandError) as missing:
        call_command("sync_tasks", source=str(tmp_path / "nope.jsonl"))
    assert missing.value.returncode == 1
    assert "no such file" in str(missing.value)


def test_sync_is_batched(tmp_path):
    path = write_jsonl(tmp_path / "many.jsonl", records(25))
    result = sync_tasks(path, batch_size=7)
    assert result.created == 25
    Task.objects.filter(external_id__in=["t3", "t20"]).update(missing_since=timezone.now() - timedelta(days=1))
    result = sync_tasks(path, batch_size=7)
    assert (result.unchanged, result.restored, result.written) == (25, 2, 2)


def test_a_sync_that_changes_its_dataset_makes_a_version(tmp_path):
    source = write_jsonl(tmp_path / "versions.jsonl", records(3))
    sync_tasks(source)
    sync_tasks(source)  # unchanged: no version
    sync_tasks(source, dry_run=True)
    write_jsonl(source, records(2))
    sync_tasks(source, allow_mass_missing=True)
    versions = list(DatasetVersion.objects.filter(dataset="versions").order_by("number"))
    assert [(v.number, v.added, v.changed, v.missing, v.file_name, v.created_by) for v in versions] == [
        (1, 3, 0, 0, "versions.jsonl", None),
        (2, 0, 0, 1, "versions.jsonl", None),
    ]


def test_a_truncated_jsonl_line_is_named_as_such_by_its_column():
    """The line's own newline is not part of its JSON: a string cut short reads as one
    (it read as an "invalid control character at line 1", beside the file's line 2)."""
    data = b'{"id": "1", "prompt": "p"}\n{"id": "g3", "prompt": "broken json\n{"id": "x"} junk\r\n'
    found = [(number, error) for _, number, _, error in sync_formats.jsonl_records(io.BytesIO(data))]
    assert found == [
        (1, None),
        (2, "invalid JSON: Unterminated string starting at column 24"),
        (3, "invalid JSON: Extra data at column 12"),
    ]
