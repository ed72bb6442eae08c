"""/api/datasets: uploads checked whole before anything is written, dry runs
with a preview, append and replace, CSV mappings, versions, the daemon's
dataset refused, size limits, and who may."""

import hashlib
import io
import json

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory

from eval.api.datasets import import_view
from eval.models import ApiToken, DatasetVersion, Run, Task
from tests.helpers import login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain(plain_http):
    """Plain HTTP test clients."""


def jsonl(*records):
    return "".join(json.dumps(record) + "\n" for record in records).encode()


def upload(client, name, content, file_name="data.jsonl", **fields):
    data = {"file": SimpleUploadedFile(file_name, content), **fields}
    return client.post(f"/api/datasets/{name}/imports", data)


RECORDS = [{"id": f"q{i}", "prompt": f"Question {i}?", "reference": str(i)} for i in range(1, 6)]


@pytest.fixture
def manager(staff):
    return login(staff)


def test_an_upload_imports_and_records_a_version(manager, staff):
    content = jsonl(*RECORDS)
    response = upload(manager, "qa", content)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["version"], body["added"], body["changed"], body["missing"], body["unchanged"]) == (1, 5, 0, 0, 0)
    assert body["errors"] == [] and "preview" not in body
    assert Task.objects.filter(source="qa").count() == 5
    version = DatasetVersion.objects.get(dataset="qa")
    assert (version.number, version.created_by, version.file_name) == (1, staff, "data.jsonl")
    assert version.sha256 == hashlib.sha256(content).hexdigest()

    again = upload(manager, "qa", content).json()
    assert (again["version"], again["unchanged"], again["added"]) == (None, 5, 0)  # nothing changed: no version

    changed = [dict(RECORDS[0], prompt="Question one?"), {"id": "q9", "prompt": "New?"}]
    third = upload(manager, "qa", jsonl(*changed)).json()
    assert (third["version"], third["added"], third["changed"], third["missing"]) == (2, 1, 1, 0)  # append
    assert Task.objects.filter(source="qa", missing_since__isnull=True).count() == 6

    versions = manager.get("/api/datasets/qa/versions").json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1] | {"created_at": None} == {
        "version": 1,
        "created_at": None,
        "created_by": "sam",
        "mode": "append",
        "file_name": "data.jsonl",
        "sha256": hashlib.sha256(content).hexdigest(),
        "added": 5,
        "changed": 0,
        "missing": 0,
        "unchanged": 0,
        "outputs": 0,
    }
    listed = {d["name"]: d for d in manager.get("/api/datasets").json()["datasets"]}
    assert listed["qa"]["tasks"] == 6 and listed["qa"]["versions"] == 2 and listed["qa"]["last_import_at"]


def test_a_file_with_bad_lines_imports_nothing_and_lists_every_error(manager):
    content = jsonl(RECORDS[0], {"id": "x"}, RECORDS[1]) + b"{not json\n" + jsonl(RECORDS[0])
    response = upload(manager, "qa", content)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["error_count"] == 3
    assert [(e["line"], e["message"].split(":")[0]) for e in error["errors"]] == [
        (2, "missing 'prompt'"),
        (4, "invalid JSON"),
        (5, "duplicate id 'q1' (an earlier line has it)"),
    ]
    assert [row["id"] for row in error["preview"]] == ["q1", "q2"]
    assert not Task.objects.exists() and not DatasetVersion.objects.exists()


def test_a_dry_run_previews_and_writes_nothing(manager):
    upload(manager, "qa", jsonl(RECORDS[0], {"id": "old", "prompt": "Old"}))
    body = upload(manager, "qa", jsonl(*RECORDS), dry_run="1", mode="replace").json()
    assert (body["version"], body["added"], body["unchanged"], body["missing"]) == (None, 4, 1, 1)
    assert [row["action"] for row in body["preview"]] == ["unchanged", "add", "add", "add", "add"]
    assert body["preview"][1] == {
        "id": "q2",
        "title": "",
        "prompt": "Question 2?",
        "reference": "2",
        "messages": None,
        "metadata": {},
        "action": "add",
    }
    assert Task.objects.filter(source="qa").count() == 2 and DatasetVersion.objects.count() == 1


def test_replace_marks_what_the_file_left_out_missing_under_the_guard(manager):
    upload(manager, "qa", jsonl(*RECORDS))
    body = upload(manager, "qa", jsonl(*RECORDS[:4]), mode="replace").json()
    assert (body["missing"], body["version"]) == (1, 2)
    assert Task.objects.get(source="qa", external_id="q5").missing_since is not None

    refused = upload(manager, "qa", jsonl(RECORDS[0]), mode="replace")
    assert refused.status_code == 409 and "nothing was imported" in refused.json()["error"]["message"]
    assert Task.objects.filter(source="qa", missing_since__isnull=True).count() == 4
    allowed = upload(manager, "qa", jsonl(RECORDS[0]), mode="replace", allow_mass_missing="1").json()
    assert allowed["missing"] == 3


def test_a_csv_with_its_own_headers_goes_through_a_mapping(manager):
    content = b'qid,question,answer,split\n7,What is 3+4?,7,test\n8,"Two\nlines",x,train\n'
    mapping = json.dumps({"id": "qid", "prompt": "question", "reference": "answer"})
    body = upload(manager, "csvset", content, "questions.csv", mapping=mapping, dry_run="1").json()
    assert body["preview"][1]["prompt"] == "Two\nlines" and body["preview"][0]["metadata"] == {"split": "test"}
    assert upload(manager, "csvset", content, "questions.csv", mapping=mapping).status_code == 201
    task = Task.objects.get(source="csvset", external_id="7")
    assert (task.prompt, task.reference, task.metadata) == ("What is 3+4?", "7", {"split": "test"})

    unmapped = upload(manager, "csvset", content, "questions.csv")
    assert unmapped.status_code == 400 and "needs 'id' and 'prompt'" in unmapped.json()["error"]["errors"][0]["message"]
    wrong = upload(manager, "csvset", content, "q.csv", mapping=json.dumps({"id": "nope"}))
    assert wrong.status_code == 400 and "lacks: 'nope'" in wrong.json()["error"]["errors"][0]["message"]
    not_csv = upload(manager, "csvset", jsonl(*RECORDS), mapping=mapping)
    assert not_csv.status_code == 400 and not_csv.json()["error"]["field"] == "mapping"


def test_a_json_body_of_records(manager):
    response = manager.post(
        "/api/datasets/js/imports",
        {"records": RECORDS[:2], "dry_run": True},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["added"] == 2 and not Task.objects.exists()
    response = manager.post("/api/datasets/js/imports", {"records": RECORDS[:2]}, content_type="application/json")
    assert response.status_code == 201 and Task.objects.filter(source="js").count() == 2
    unknown = manager.post("/api/datasets/js/imports", {"records": [], "bogus": 1}, content_type="application/json")
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "bogus"


def test_the_synced_dataset_refuses_uploads(manager, settings):
    settings.TASK_SOURCE_NAME = "prod"
    response = upload(manager, "prod", jsonl(*RECORDS))
    assert response.status_code == 409 and "sync daemon" in response.json()["error"]["message"]
    assert not Task.objects.exists()


def test_over_the_upload_limit_is_413_and_the_api_body_cap_does_not_apply(manager, settings):
    settings.API_MAX_BODY_BYTES = 1024
    settings.DATASET_MAX_UPLOAD_BYTES = 4096
    records = [{"id": f"r{i}", "prompt": "x" * 100} for i in range(30)]  # ~3.5 KB: over the API cap
    assert upload(manager, "big", jsonl(*records)).status_code == 201
    many = [{"id": f"r{i}", "prompt": "x" * 100} for i in range(60)]
    response = upload(manager, "big", jsonl(*many))
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    assert Task.objects.filter(source="big").count() == 30
    raw = manager.post("/api/datasets/big/imports?format=jsonl", jsonl(*many), content_type="application/x-ndjson")
    assert raw.status_code == 413


def test_who_may_upload(client, reviewer, outsider, django_user_model):
    assert upload(Client(), "qa", jsonl(*RECORDS)).status_code == 401
    assert upload(login(reviewer), "qa", jsonl(*RECORDS)).status_code == 403
    assert login(reviewer).get("/api/datasets").status_code == 403
    outsider.user_permissions.add(Permission.objects.get(codename="manage_datasets"))
    holder = django_user_model.objects.get(pk=outsider.pk)
    assert upload(login(holder), "qa", jsonl(*RECORDS)).status_code == 201


def test_a_session_upload_needs_the_csrf_header(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    client.get("/api/datasets")  # no cookie yet: the page sets one; take it from a token call
    response = upload(client, "qa", jsonl(*RECORDS))
    assert response.status_code == 403 and response.json()["error"]["code"] == "csrf_failed"
    assert not Task.objects.exists()


def test_a_run_records_its_dataset_version_and_sees_it_change(manager, staff):
    upload(manager, "qa", jsonl(*RECORDS))
    response = manager.post(
        "/api/runs",
        {"name": "r", "provider": "echo", "model": "echo", "tasks": {"source": "qa"}},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    run = response.json()
    assert (run["dataset_version"], run["dataset_changed"]) == (1, False)
    upload(manager, "qa", jsonl({"id": "new", "prompt": "More"}))
    again = manager.get(f"/api/runs/{run['id']}").json()
    assert (again["dataset_version"], again["dataset_changed"]) == (1, True)
    page = manager.get(f"/runs/{run['id']}/").content.decode()
    assert "the dataset changed since this run was made" in page
    other = manager.post(
        "/api/runs",
        {"name": "all", "provider": "echo", "model": "echo", "tasks": {}},
        content_type="application/json",
    ).json()
    assert other["dataset_version"] is None
    assert Run.objects.get(pk=run["id"]).dataset_version.number == 1


def test_the_daemons_dataset_is_its_source_file_name_without_task_source_name(manager, settings, tmp_path):
    source = tmp_path / "nightly.jsonl"
    source.write_bytes(jsonl(*RECORDS))
    settings.TASK_SOURCE, settings.TASK_SOURCE_NAME = str(source), ""
    assert upload(manager, "nightly", jsonl(*RECORDS)).status_code == 409
    assert upload(manager, "other", jsonl(*RECORDS)).status_code == 201


def chunked_request(staff, content, name="chunky"):
    """A POST whose body arrives chunked: no Content-Length, the server's input read to its end."""
    _, raw = ApiToken.issue(staff, "uploads")
    request = RequestFactory().post(
        f"/api/datasets/{name}/imports?format=jsonl",
        data=b"",
        content_type="application/x-ndjson",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    request.META["CONTENT_LENGTH"] = ""
    request.META["wsgi.input"] = io.BytesIO(content)
    return request


def test_a_chunked_body_is_read_to_its_end_within_the_limit(staff, settings):
    response = import_view(chunked_request(staff, jsonl(*RECORDS)), "chunky")
    assert response.status_code == 201, response.content
    assert Task.objects.filter(source="chunky").count() == 5
    settings.DATASET_MAX_UPLOAD_BYTES = 1024
    many = [{"id": f"r{i}", "prompt": "x" * 100} for i in range(30)]
    response = import_view(chunked_request(staff, jsonl(*many), "toobig"), "toobig")
    assert response.status_code == 413 and not Task.objects.filter(source="toobig").exists()


def test_an_empty_file_is_an_error_not_an_empty_import(manager):
    for content in (b"", b"\n\n", b"qid,question\n"):
        name = "empty.csv" if content.startswith(b"qid") else "empty.jsonl"
        response = upload(
            manager,
            "qa",
            content,
            name,
            mapping=json.dumps({"id": "qid", "prompt": "question"}) if name.endswith(".csv") else "",
        )
        assert response.status_code == 400, content
        assert response.json()["error"]["errors"] == [{"line": None, "message": "the file holds no records"}]
    assert not DatasetVersion.objects.exists()
