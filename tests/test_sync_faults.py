"""Task sync under faults: a URL that drips or never ends (total deadline, size
cap, stop request), a source that would mark most of its tasks missing, a CSV
quote left open."""

import io
import itertools
import json
import time

import pytest
from django.core.management import CommandError, call_command

from eval.models import Task
from eval.sync import FetchLimitExceeded, MassMissingRefused, SourceError, SyncInterrupted, sync_tasks
from eval.sync.fetch import open_url
from tests.fakes.slow_source import SlowSource

pytestmark = pytest.mark.django_db


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def records(n, prefix="t"):
    return [{"id": f"{prefix}{i}", "prompt": f"prompt {i}"} for i in range(n)]


def missing_ids():
    return set(Task.objects.filter(missing_since__isnull=False).values_list("external_id", flat=True))


@pytest.fixture
def slow_source():
    # drip_for: were the deadline not enforced, the fetch would end (and succeed) after it
    with SlowSource(every=0.1, drip_for=20) as server:
        yield server


# --- the total deadline -----------------------------------------------------------------


def test_a_slow_drip_url_is_refused_at_its_total_deadline(slow_source, settings):
    settings.SYNC_FETCH_TIMEOUT_SECONDS = 1  # each read gets a byte well within it; the whole never comes
    url = slow_source.url("/drip.json") + "?token=secret"
    started = time.monotonic()
    with pytest.raises(FetchLimitExceeded) as refused:
        sync_tasks(url)
    assert time.monotonic() - started < 15  # a safety net only: the old fetch ran for the whole drip
    message = str(refused.value)
    assert slow_source.url("/drip.json") in message and "secret" not in message
    assert "SYNC_FETCH_TIMEOUT_SECONDS=1 s" in message and "fetch abandoned" in message


def test_the_deadline_is_measured_on_the_clock_not_per_read(slow_source):
    """An injected clock: 0.4 s pass per look, so a 1 s deadline is past on the
    third look whatever the server does (it sends a byte every 0.1 s)."""
    clock = itertools.count(0.0, 0.4).__next__
    url = slow_source.url("/drip.json")
    with pytest.raises(FetchLimitExceeded, match=r"^drip: not read within SYNC_FETCH_TIMEOUT_SECONDS=1 s"):
        open_url(url, shown="drip", timeout=1, max_bytes=100, clock=clock).read()


def test_a_stop_request_ends_a_fetch_in_progress(slow_source, tmp_path):
    path = write_jsonl(tmp_path / "drip.jsonl", records(3))
    sync_tasks(path, name="drip")
    looks = itertools.count()
    with pytest.raises(SyncInterrupted):
        sync_tasks(slow_source.url("/drip.json"), should_stop=lambda: next(looks) >= 3)
    assert slow_source.requested.is_set()  # it was stopped while fetching
    assert not missing_ids()  # an interrupted sync marks nothing


# --- the size cap -------------------------------------------------------------------------


def test_a_source_over_the_size_cap_is_refused_and_marks_nothing(slow_source, settings):
    settings.SYNC_FETCH_MAX_BYTES = 50_000
    assert sync_tasks(slow_source.url("/big.json?bytes=20000")).records > 1  # within the cap: read

    with pytest.raises(FetchLimitExceeded) as undeclared:
        sync_tasks(slow_source.url("/big.json?bytes=200000"))
    message = str(undeclared.value)
    assert "SYNC_FETCH_MAX_BYTES=50000" in message and "more than 50000 bytes arrived" in message
    assert slow_source.url("/big.json") in message

    with pytest.raises(FetchLimitExceeded, match=r"SYNC_FETCH_MAX_BYTES=50000 \(it declares \d+ bytes\)"):
        sync_tasks(slow_source.url("/declared.json?bytes=200000"))
    assert Task.objects.filter(source="big").exists() and not missing_ids()


def test_the_command_exits_1_naming_the_limit(slow_source, settings):
    settings.SYNC_FETCH_TIMEOUT_SECONDS = 0.5
    with pytest.raises(CommandError) as failed:
        call_command("sync_tasks", source=slow_source.url("/drip.json"))
    assert failed.value.returncode == 1
    assert "SYNC_FETCH_TIMEOUT_SECONDS=0.5 s" in str(failed.value)


# --- mass missing ---------------------------------------------------------------------------


def test_an_empty_or_all_invalid_file_under_an_existing_source_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "suite.jsonl", records(4))
    sync_tasks(path)
    path.write_text("")
    with pytest.raises(MassMissingRefused) as refused:
        sync_tasks(path)
    message = str(refused.value)
    assert "'suite'" in message and "refused to mark 4 of its 4 present tasks missing" in message
    assert "--allow-mass-missing" in message
    path.write_text("not json\n{also not\n")
    with pytest.raises(MassMissingRefused, match="read 2 record"):
        sync_tasks(path)
    assert not missing_ids()

    result = sync_tasks(path, allow_mass_missing=True)
    assert result.missing == 4 and missing_ids() == {"t0", "t1", "t2", "t3"}


def test_up_to_half_goes_missing_more_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "half.jsonl", records(4))
    sync_tasks(path)
    write_jsonl(path, records(4)[:2])
    assert sync_tasks(path).missing == 2  # half: a normal change
    write_jsonl(path, records(4))
    sync_tasks(path)
    write_jsonl(path, records(4)[:1])
    with pytest.raises(MassMissingRefused, match="3 of its 4"):
        sync_tasks(path)
    with pytest.raises(MassMissingRefused):
        sync_tasks(path, dry_run=True)  # a dry run tells the same
    assert sync_tasks(path, dry_run=True, allow_mass_missing=True).missing == 3


def test_a_replaced_source_counts_only_the_tasks_present_before(tmp_path):
    """Four new ids for four old ones: 4 of 4 would go (not 4 of the 8 now present)."""
    path = write_jsonl(tmp_path / "swap.jsonl", records(4, prefix="old"))
    sync_tasks(path)
    write_jsonl(path, records(4, prefix="new"))
    with pytest.raises(MassMissingRefused, match="4 of its 4") as refused:
        sync_tasks(path)
    assert refused.value.result.created == 4  # the records read were upserted; only the marking was refused
    assert not missing_ids()


def test_a_new_source_is_never_refused(tmp_path):
    Task.objects.create(source="other", external_id="o1", prompt="p")
    path = tmp_path / "fresh.jsonl"
    path.write_text("")
    assert sync_tasks(path).missing == 0


def test_the_command_refuses_a_mass_missing_unless_allowed(tmp_path):
    path = write_jsonl(tmp_path / "cmd.jsonl", records(3))
    call_command("sync_tasks", source=str(path), stdout=io.StringIO())
    path.write_text("")
    with pytest.raises(CommandError) as refused:
        call_command("sync_tasks", source=str(path), stdout=io.StringIO())
    assert refused.value.returncode == 1
    assert "refused to mark 3 of its 3 present tasks missing" in str(refused.value)
    assert not missing_ids()

    out = io.StringIO()
    call_command("sync_tasks", "--allow-mass-missing", source=str(path), stdout=out)
    assert "missing=3" in out.getvalue() and len(missing_ids()) == 3


# --- CSV ----------------------------------------------------------------------------------


def test_an_unterminated_csv_quote_is_an_error_naming_its_line(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_text('id,prompt\nc0,fine\nc1,"fine\nc2,p\nc3,p\n')
    with pytest.raises(SourceError, match=r"line 3: bad CSV: a quoted field opened on this row is never closed"):
        sync_tasks(path)
    assert not Task.objects.exists()

    path.write_text('id,prompt\nc0,p\nc1,"p\nc2,"p"\nc3,p\n')  # closed by the next row's quote: two rows merged
    with pytest.raises(SourceError, match=r"line 3: bad CSV: .* not closed properly"):
        sync_tasks(path)


def test_a_csv_quote_error_in_a_directory_names_the_file_and_marks_nothing(tmp_path):
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "a.csv").write_text('id,prompt\na0,p\na1,"multi\nline"\na2,p\n')
    assert sync_tasks(folder).created == 3  # a quoted field over two lines is fine
    (folder / "a.csv").write_text('id,prompt\na0,p\na1,"multi\nline\na2,p\n')
    with pytest.raises(SourceError, match=r"a\.csv line 3: bad CSV"):
        sync_tasks(folder)
    assert not missing_ids()  # a2 was swallowed, not marked missing
