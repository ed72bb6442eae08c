"""The README keeps up with the code: every environment variable the code reads
is in its Settings tables exactly once, with a meaning; and it names no
document outside the repository."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SOURCES = [
    *sorted((ROOT / "coreproject").rglob("*.py")),
    *sorted((ROOT / "eval").rglob("*.py")),
    ROOT / "run_services.py",
    ROOT / "run_sync_daemon.py",
    ROOT / "deploy" / "gunicorn.conf.py",
]
# A variable read: coreproject/env.py's typed readers (env.integer("X", ...) and, inside
# env.py, integer("X", ...)), os.environ.get / os.environ[...] / os.getenv.
READERS = re.compile(
    r"(?:\benv\.\w+|\b(?:string|boolean|integer|number|items|choice|rate|prices|networks|endpoints)"
    r'|os\.environ\.get|os\.getenv)\(\s*"([A-Z][A-Z0-9_]{2,})"'
    r'|os\.environ\[\s*"([A-Z][A-Z0-9_]{2,})"\s*\]'
    r'|^VARIABLE = "([A-Z][A-Z0-9_]{2,})"',
    re.MULTILINE,
)
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}


def variables_read():
    found = set()
    for path in SOURCES:
        for match in READERS.finditer(path.read_text()):
            found.add(next(group for group in match.groups() if group))
    return found - NOT_SETTINGS


def settings_rows():
    """Each table row of the Settings section: (names in its first cell, its meaning)."""
    text = README.read_text()
    section = text[text.index("\n## Settings\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if not line.startswith("| `") or len(cells) < 3:
            continue
        rows.append((re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]), cells[-1]))
    return rows


def test_the_reader_pattern_finds_the_kinds_of_read_the_code_uses():
    found = variables_read()
    # env.integer(...) in settings, integer(...) inside env.py, os.environ.get, gunicorn.conf.py
    assert {"WORKER_CONCURRENCY", "WORKER_PROCESSES", "DJANGO_ADMIN_PASSWORD", "GUNICORN_THREADS"} <= found
    assert len(found) > 80


def test_every_variable_read_is_in_the_settings_tables_once_with_a_meaning():
    rows = settings_rows()
    documented = [name for names, _ in rows for name in names]
    missing = sorted(variables_read() - set(documented))
    assert not missing, f"read by the code, not in README's Settings: {missing}"
    twice = sorted({name for name in documented if documented.count(name) > 1})
    assert not twice, f"in README's Settings more than once: {twice}"
    unexplained = [names for names, meaning in rows if len(meaning) < 10]
    assert not unexplained, f"rows with no meaning: {unexplained}"
    stale = sorted(set(documented) - variables_read() - {"PUBSUB_EMULATOR_HOST"})
    assert not stale, f"in README's Settings, read by no code: {stale}"


def test_the_readme_names_no_document_outside_the_repository():
    text = README.read_text()
    for link in re.findall(r"\]\(([^)#]+)", text):
        if not link.startswith(("http://", "https://")):
            assert (ROOT / link).exists(), f"README links to {link}, which is not in the repository"
    for outside in ("DESIGN.md", "FACTS.md", "STYLE.md", "../shared"):
        assert outside not in text, outside
