"""The product scripts in eval/static/eval/ are ES modules (issue 24): each
states what it needs with `import` (relative "./x.js" paths, files that
exist), the imports form no cycle, nothing hangs off a `window.Eval`
namespace, templates load them as type="module", and API URLs come from
the page (data-*-url attributes), never spelled in a script."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "eval" / "static" / "eval"
TEMPLATES = ROOT / "eval" / "templates"
SCRIPTS = sorted(STATIC.glob("*.js"))

# import {a, b} from "./x.js";  import * as x from "./x.js";  import "./x.js";  export {a} from "./x.js";
IMPORT = re.compile(
    r"""^\s*(?:import\s*|(?:import|export)\s*(?:\{[^}]*\}|\*(?:\s+as\s+\w+)?|\w+)\s*from\s*)["']([^"']+)["']\s*;""",
    re.MULTILINE,
)
SCRIPT_TAG = re.compile(r"<script\b[^>]*>", re.IGNORECASE)
STATIC_SRC = re.compile(r"""src="\{%\s*static\s+'([^']+)'\s*%\}\"""")


def _code(text):
    """A script without its comments."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"(?m)^\s*//.*$|\s//\s.*$", "", text)


def imports(path):
    return IMPORT.findall(_code(path.read_text()))


def graph():
    return {path.name: [spec.removeprefix("./") for spec in imports(path)] for path in SCRIPTS}


def find_cycle(edges):
    """One import cycle as ["a.js", "b.js", "a.js"], or None."""
    state = {}  # name -> "open" while on the path, "done" after

    def visit(name, path):
        state[name] = "open"
        for target in edges.get(name, []):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[name] = "done"
        return None

    for name in edges:
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return None


def test_there_are_product_scripts_and_they_import_each_other():
    assert len(SCRIPTS) >= 20
    assert sum(len(targets) for targets in graph().values()) >= 40


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.name)
def test_every_import_is_a_relative_file_that_exists(path):
    for spec in imports(path):
        relative = spec.startswith("./") and spec.endswith(".js")
        assert relative, f'{path.name}: import "{spec}" is not a relative ./x.js path'
        assert (STATIC / spec).is_file(), f'{path.name} imports "{spec}", which does not exist'


def test_the_imports_have_no_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a.js": ["b.js"], "b.js": ["c.js"], "c.js": ["a.js"]}) == ["a.js", "b.js", "c.js", "a.js"]
    assert find_cycle({"a.js": ["b.js", "c.js"], "b.js": ["c.js"], "c.js": []}) is None


def test_the_import_pattern_reads_every_form():
    text = (
        'import "./a.js";\nimport { b, c as d } from "./b.js";\n'
        'import * as e from "./e.js";\nexport { f } from "./f.js";\n'
    )
    assert IMPORT.findall(text) == ["./a.js", "./b.js", "./e.js", "./f.js"]


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.name)
def test_no_script_uses_a_window_namespace(path):
    code = _code(path.read_text())
    assert "window.Eval" not in code, f"{path.name} uses window.Eval: import what it needs instead"
    assert not re.search(r"^\(function\s*\(", code, re.MULTILINE), f"{path.name} is still wrapped in an IIFE"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.name)
def test_no_script_spells_an_api_url(path):
    """The page renders every API URL with {% url %} into a data-*-url attribute, and
    base.html the pages' own (data-page-url-task, data-page-url-run: api.pageUrl)."""
    code = _code(path.read_text())
    assert not re.search(r"""["'`]/api/""", code), f"{path.name} hard-codes an /api/ URL"
    assert not re.search(r"""["'`]/(tasks|runs)/["'`]""", code), f"{path.name} hard-codes a page URL"


def _template_scripts():
    for template in sorted(TEMPLATES.rglob("*.html")):
        for tag in SCRIPT_TAG.findall(template.read_text()):
            source = STATIC_SRC.search(tag)
            if source:
                yield template.relative_to(TEMPLATES), tag, source.group(1)


def test_templates_load_product_scripts_as_modules_only():
    loaded = list(_template_scripts())
    assert loaded
    for template, tag, source in loaded:
        assert (STATIC.parent / source).is_file(), f"{template} loads {source}, which does not exist"
        if source.startswith("eval/vendor/"):
            continue  # marked and DOMPurify: classic scripts, loaded before the modules
        assert 'type="module"' in tag, f'{template} loads {source} without type="module"'


def _reaches(edges, start, goal):
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name == goal:
            return True
        if name not in seen:
            seen.add(name)
            todo.extend(edges.get(name, []))
    return False


def test_every_page_entry_localizes_times():
    """site.js rewrites server-rendered <time> elements in the reader's zone: every entry module runs it."""
    edges = graph()
    entries = {Path(source).name for _, _, source in _template_scripts() if not source.startswith("eval/vendor/")}
    assert "site.js" in entries and len(entries) >= 10
    for entry in entries:
        assert _reaches(edges, entry, "site.js"), f"{entry} does not import ./site.js"


def test_times_are_formatted_in_one_place():
    for path in SCRIPTS:
        if path.name == "format.js":
            continue
        code = _code(path.read_text())
        for call in ("toLocaleTimeString", "toLocaleDateString", "getHours"):
            assert call not in code, f"{path.name} formats a time itself ({call}): use format.js"
