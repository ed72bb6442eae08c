"""Files made at first start: created atomically, read by whoever loses the race."""

import os
import subprocess
import sys
import time
from pathlib import Path

from coreproject.local_files import read_or_create

ROOT = Path(__file__).resolve().parent.parent


def test_the_first_caller_writes_and_later_callers_read_it(tmp_path):
    path = tmp_path / "sub" / "secret-key"
    assert read_or_create(path, lambda: "first") == "first"
    assert read_or_create(path, lambda: "second") == "first"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir()] == ["secret-key"]  # no temporary left


def test_a_loser_reads_the_winners_whole_file(tmp_path):
    path = tmp_path / "secret-key"

    def lose_the_race():
        path.write_text("winner")  # another process linked its file meanwhile
        return "loser"

    assert read_or_create(path, lose_the_race) == "winner"
    assert [p.name for p in tmp_path.iterdir()] == ["secret-key"]


def test_many_processes_starting_at_once_on_a_fresh_local_dir_agree_on_one_key(tmp_path):
    """The settings of 12 processes imported together: none dies, all use one key."""
    local = tmp_path / "local"
    start = time.time() + 8  # every process imports the settings at the same moment
    code = (
        "import time, django; from django.conf import settings; "
        f"time.sleep(max(0, {start} - time.time())); print(settings.SECRET_KEY)"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "coreproject.settings",
        "DJANGO_LOCAL_DIR": str(local),
        "DJANGO_SECRET_KEY": "",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(12)
    ]
    results = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * 12, [err for _, err in results]
    keys = {out.strip() for out, _ in results}
    assert keys == {(local / "secret-key").read_text().strip()}
    assert len(keys.pop()) > 40
