"""/datasets/ in a real browser: a CSV whose headers differ from the record
format, with a bad line, previewed (the line listed with its number, Import
not offered, nothing written); the same file fixed, its columns mapped in the
selects, previewed (the rows as they will be stored, the counts) and imported
on confirmation (a version, tasks stored as mapped); a JSONL file with a
conversation and outputs dropped on the drop zone; the page fits 400 px.
Fixtures: tests/browser_support.py."""

import json

import pytest
from django.contrib.auth.models import Permission

from eval.models import DatasetVersion, Run, Task
from eval.sync.upload import Upload, import_upload
from tests import browser_support as support

browser, server, page = support.browser, support.server, support.page
user, web_settings = support.user, support.web_settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BAD_CSV = (
    b"qid,question,answer,topic\n"
    b"q1,What is 2+2?,4,maths\n"
    b"q2,Capital of France?,Paris,geo,extra\n"
    b"q3,Who wrote Hamlet?,Shakespeare,books\n"
)
GOOD_CSV = BAD_CSV.replace(b",geo,extra", b",geo")


@pytest.fixture
def manager(user):
    user.user_permissions.add(Permission.objects.get(codename="manage_datasets", content_type__app_label="eval"))
    return user


def choose(page, name, content, mime="text/csv"):
    page.set_input_files("#upload-file", files=[{"name": name, "mimeType": mime, "buffer": content}])


def map_columns(page):
    page.wait_for_selector("#mapping:not([hidden])")
    page.select_option("#map-id", "qid")
    page.select_option("#map-prompt", "question")
    page.select_option("#map-reference", "answer")


def test_a_csv_is_previewed_with_its_bad_line_then_mapped_and_imported(page, manager):
    page.goto("/datasets/")
    page.fill("#upload-dataset", "quiz")
    choose(page, "quiz.csv", BAD_CSV)
    map_columns(page)
    assert page.input_value("#map-title") == ""  # no column called title: none chosen
    page.click("#preview-button")
    page.wait_for_selector("#preview-errors-box:not([hidden])")
    errors = page.locator("#preview-errors li").all_text_contents()
    assert errors == ["Line 3: 5 fields but the header has 4"]
    assert page.is_disabled("#import-button")
    assert "nothing can be imported" in page.text_content("#upload-status")
    assert not Task.objects.exists()

    choose(page, "quiz.csv", GOOD_CSV)
    map_columns(page)
    page.click("#preview-button")
    page.wait_for_selector("#preview:not([hidden])")
    page.wait_for_function("() => !document.getElementById('import-button').disabled")
    assert page.is_hidden("#preview-errors-box")
    counts = page.text_content("#preview-counts")
    assert "add 3 tasks, change 0, mark 0 missing" in counts
    rows = page.locator("#preview-table tbody tr")
    assert rows.count() == 3
    first = rows.nth(0).locator("td").all_text_contents()
    assert first[:4] == ["q1", "new", "What is 2+2?", "4"] and json.loads(first[5]) == {"topic": "maths"}
    assert not Task.objects.exists()  # a preview writes nothing

    page.click("#import-button")
    page.wait_for_selector("#import-result:not([hidden])")
    assert "Imported as version 1 of quiz: 3 tasks added" in page.text_content("#import-result")
    task = Task.objects.get(source="quiz", external_id="q2")
    assert (task.prompt, task.reference, task.metadata) == ("Capital of France?", "Paris", {"topic": "geo"})
    assert DatasetVersion.objects.get(dataset="quiz").file_name == "quiz.csv"
    page.wait_for_selector("#versions:not([hidden])")
    version = page.locator("#versions-table tbody tr").first.locator("td").all_text_contents()
    assert version[0] == "v1" and version[4] == DatasetVersion.objects.get(dataset="quiz").sha256[:12]
    assert page.locator("#datasets-table tbody tr").first.locator("td").nth(1).text_content() == "3"
    # The file is in: the form starts over (no file, no mapping, nothing to preview).
    assert page.text_content("#file-name") == "" and page.is_hidden("#mapping")
    assert page.is_disabled("#preview-button")
    assert not page.errors


def test_a_dropped_jsonl_with_a_conversation_and_outputs(page, manager):
    records = [
        {
            "id": "c1",
            "messages": [
                {"role": "system", "content": "Answer in French."},
                {"role": "user", "content": "Say hello."},
            ],
            "outputs": [{"label": "app-v1", "text": "Bonjour"}, {"label": "app-v2", "text": "Salut !"}],
        }
    ]
    content = "".join(json.dumps(r) + "\n" for r in records)
    page.goto("/datasets/")
    page.fill("#upload-dataset", "chats")
    page.evaluate(
        """(text) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], "chats.jsonl", {type: "application/x-ndjson"}));
            const zone = document.getElementById("drop-zone");
            zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true, cancelable: true}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }""",
        content,
    )
    page.wait_for_function("() => document.getElementById('file-name').textContent.startsWith('chats.jsonl')")
    assert page.is_hidden("#mapping")
    page.click("#preview-button")
    page.wait_for_function("() => !document.getElementById('import-button').disabled")
    assert "2 outputs new or changed" in page.text_content("#preview-counts")
    turns = page.locator("#preview-table .turn-role").all_text_contents()
    assert turns == ["system", "user"]
    page.click("#import-button")
    page.wait_for_selector("#import-result:not([hidden])")
    assert Task.objects.get(source="chats").messages[0]["role"] == "system"
    assert set(Run.objects.filter(kind="imported").values_list("model", flat=True)) == {"app-v1", "app-v2"}

    page.set_viewport_size({"width": 400, "height": 900})
    page.goto("/datasets/")
    page.wait_for_selector("#datasets-table tbody tr")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    assert not page.errors


def test_the_page_is_for_dataset_managers(page):
    response = page.goto("/datasets/")
    assert response.status == 403


def test_blind_pairs_show_a_conversation_as_its_turns(page, manager, tmp_path):
    chat = [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Say hello."},
        {"role": "assistant", "content": "Bonjour !"},
        {"role": "user", "content": "Now say goodbye."},
    ]
    record = {
        "id": "c1",
        "messages": chat,
        "outputs": [{"label": "v1", "text": "Au revoir"}, {"label": "v2", "text": "Salut"}],
    }
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(record) + "\n")
    import_upload(Upload(dataset="pairs", path=str(path), fmt="jsonl"))
    page.goto("/pairs/")
    page.wait_for_selector("#pair:not([hidden])")
    assert page.locator("#pair-conversation .turn-role").all_text_contents() == ["System", "User", "Assistant", "User"]
    assert page.locator("#pair-conversation .text-view").nth(3).text_content() == "Now say goodbye."
    assert page.is_hidden("#pair-prompt") and "Conversation" in page.text_content("#pair-prompt-title")
    assert {page.text_content("#left-output"), page.text_content("#right-output")} == {"Au revoir", "Salut"}
    assert not page.errors
