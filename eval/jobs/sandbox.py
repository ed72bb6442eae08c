"""The Jinja2 environment prompt templates render in: sandboxed, StrictUndefined, no
autoescaping, and bounded in time and size.

Jinja's own sandbox stops attribute tricks, not work: ``{{ 'x' * 10**9 }}``, a nested
loop over ``range(100000)``, ``'x'|center(10**9)`` or a ``replace`` that multiplies
the prompt would each hold a web thread or its memory. So here:

- arithmetic and repetition are checked before they run (``*``, ``**``, ``+``, ``%``):
  no string or list past the render's character limit, no number past 10**100;
- every ``for`` loop's iterable is wrapped (the template's syntax tree is rewritten)
  in a guard that counts iterations and checks the deadline on each one;
- only a list of filters and of str/dict methods is offered, each checked before it
  runs when its output could outgrow its input (join, replace, indent, center, format);
- macros, call blocks, recursive loops, includes and imports are refused when parsed
  (a recursion fans out with no loop to count);
- what the render yields is counted as it streams and stopped at the limit.

Nothing here knows about tasks or jobs: eval/jobs/prompt_templates.py renders with it.
"""

import contextvars
import functools
import math
import re
import time

from django.conf import settings
from jinja2 import StrictUndefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import missing
from jinja2.visitor import NodeTransformer

LOOP_GUARD = "loop_guard__"
CONCAT_GUARD = "concat_guard__"
MAX_ITERATIONS = 100_000
MAX_NUMBER_DIGITS = 100
_FORBIDDEN_NODES = (nodes.Macro, nodes.CallBlock, nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)
_FORMAT_WIDTH = re.compile(r"[%:{]\D{0,3}(\d+)")
SAFE_METHODS = {
    str: {"upper", "lower", "strip", "lstrip", "rstrip", "split", "splitlines", "startswith", "endswith"}
    | {"title", "capitalize", "count", "find", "isdigit", "isalpha", "isspace"},
    dict: {"items", "keys", "values", "get"},
    list: {"count", "index"},
}
SAFE_FILTERS = {
    "abs", "batch", "capitalize", "center", "count", "default", "d", "dictsort", "first", "float", "format",
    "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject",
    "rejectattr", "replace", "reverse", "round", "select", "selectattr", "slice", "sort", "string", "sum",
    "title", "tojson", "trim", "truncate", "unique", "upper", "wordcount", "wordwrap",
}  # fmt: skip


class TemplateLimit(Exception):
    """A render went past a limit (size, time, loop iterations, number size)."""


class Budget:
    """One render's limits: characters, a deadline, loop iterations."""

    def __init__(self, max_chars, seconds):
        self.max_chars = max_chars
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.iterations = 0

    def check_time(self):
        if time.monotonic() > self.deadline:
            raise TemplateLimit(f"rendering took longer than {self.seconds:g} s")

    def check_size(self, size, what="the result"):
        if size > self.max_chars:
            raise TemplateLimit(f"{what} would be longer than MAX_PROMPT_CHARS ({self.max_chars})")

    def concat(self, parts):
        """``a ~ b``: checked before it is built (Jinja joins the parts itself otherwise)."""
        self.check_size(sum(_size(part) for part in parts), "a concatenation")
        return "".join(map(str, parts))

    def loop(self, iterable):
        for item in iterable:
            self.iterations += 1
            if self.iterations > MAX_ITERATIONS:
                raise TemplateLimit(f"the loops ran more than {MAX_ITERATIONS} times")
            self.check_time()
            yield item


_budget = contextvars.ContextVar("template_budget")


def current():
    """The budget of the render in progress (a compile-time constant fold gets a fresh one)."""
    budget = _budget.get(None)
    return budget if budget is not None else Budget(settings.MAX_PROMPT_CHARS, 0.5)


def _size(value, depth=0):
    """About how many characters ``value`` makes as text: what a filter, a call or an
    output would build from it (a list of 100,000 references to one long string is long)."""
    if isinstance(value, str):
        return len(value)
    if depth > 20:
        return 1
    if isinstance(value, list | tuple):
        return sum(_size(item, depth + 1) + 2 for item in value)
    if isinstance(value, dict):
        return sum(_size(key, depth + 1) + _size(item, depth + 1) + 4 for key, item in value.items())
    return 8


def _length(value):
    return _size(value) if isinstance(value, str | list | tuple) else 0


def _check_inputs(args, what):
    """No argument larger than the budget's characters (a long string, a long list)."""
    budget = current()
    for value in args:
        budget.check_size(_size(value), what)


def _check_binop(operator, left, right):
    budget = current()
    budget.check_time()
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
    if operator == "**" and numbers and abs(left) > 1 and right * math.log10(abs(left)) > MAX_NUMBER_DIGITS:
        raise TemplateLimit(f"{left} ** {right} is a number of more than {MAX_NUMBER_DIGITS} digits")
    if operator == "*" and numbers and abs(left) * abs(right) > 10**MAX_NUMBER_DIGITS:
        raise TemplateLimit(f"the product is a number of more than {MAX_NUMBER_DIGITS} digits")
    if operator == "*" and not numbers:
        count = right if isinstance(right, int) else left if isinstance(left, int) else 1
        budget.check_size(max(_length(left), _length(right), 1) * max(count, 0), "a repetition")
    if operator == "+":
        budget.check_size(_length(left) + _length(right), "a concatenation")
    if operator == "%" and isinstance(left, str):
        _check_format(left)


def _check_format(text):
    widths = [int(width) for width in _FORMAT_WIDTH.findall(text)]
    current().check_size(len(text) + sum(widths), "a formatted string")


def _check_ints(args):
    budget = current()
    for value in args:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > budget.max_chars:
            raise TemplateLimit(f"the argument {value} is larger than MAX_PROMPT_CHARS ({budget.max_chars})")


# Filters whose output can outgrow their input: (value, args) -> characters it would make.
def _joined(value, args):
    items = [str(item) for item in value] if not isinstance(value, str) else list(value)
    separator = str(args[0]) if args else ""
    return sum(map(len, items)) + len(separator) * max(len(items) - 1, 0)


def _replaced(value, args):
    text, old, new = str(value), str(args[0]) if args else "", str(args[1]) if len(args) > 1 else ""
    count = (len(text) + 1) if old == "" else text.count(old)
    return len(text) + count * len(new)


def _indented(value, args):
    width = args[0] if args and isinstance(args[0], int) else len(str(args[0])) if args else 4
    return len(str(value)) + (str(value).count("\n") + 1) * width


_GROWTH = {
    "join": _joined,
    "replace": _replaced,
    "indent": _indented,
    "center": lambda value, args: max(len(str(value)), args[0] if args and isinstance(args[0], int) else 80),
    "format": lambda value, args: (_check_format(str(value)), len(str(value)) + sum(len(str(a)) for a in args))[1],
}


def _guarded_filter(name, function):
    @functools.wraps(function)
    def guarded(*args, **kwargs):
        budget = current()
        budget.check_time()
        _check_ints(args)
        _check_ints(kwargs.values())
        # The value follows a context or environment argument when the filter takes one.
        values = [a for a in args if not hasattr(a, "environment") and not hasattr(a, "filters")]
        _check_inputs([*values, *kwargs.values()], f"the {name} filter's input")
        grows = _GROWTH.get(name)
        if grows is not None and values:
            budget.check_size(grows(values[0], values[1:]), f"the {name} filter's result")
        return function(*args, **kwargs)

    return guarded


class PromptUndefined(StrictUndefined):
    """A missing variable: an error whose message names it as the template spells it."""

    __slots__ = ()

    @property
    def _undefined_message(self):
        if self._undefined_obj is not missing and isinstance(self._undefined_obj, dict):
            return f"metadata.{self._undefined_name} is undefined (the task's metadata has no {self._undefined_name!r})"
        return super()._undefined_message


class PromptSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self):
        super().__init__(
            undefined=PromptUndefined, autoescape=False, keep_trailing_newline=True, finalize=self._finalize
        )
        self.filters = {name: _guarded_filter(name, self.filters[name]) for name in SAFE_FILTERS}
        self.globals = {"range": self.globals["range"], "dict": dict, "namespace": self.globals["namespace"]}

    @staticmethod
    def _finalize(value):
        """Every {{ value }} before it becomes text: no larger than the budget."""
        current().check_size(_size(value), "a value")
        return value

    def call_binop(self, context, operator, left, right):
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def is_safe_callable(self, obj):
        owner = getattr(obj, "__self__", None)
        if owner is not None and not isinstance(owner, type) and type(owner) in SAFE_METHODS:
            return getattr(obj, "__name__", "") in SAFE_METHODS[type(owner)]
        # The loop guard, range, dict and namespace; nothing else (a cycler, lipsum...) is offered.
        return isinstance(owner, Budget) or any(obj is value for value in self.globals.values())

    def call(__self, __context, __obj, *args, **kwargs):
        current().check_time()
        _check_ints(args)
        _check_ints(kwargs.values())
        _check_inputs([*args, *kwargs.values()], "a call's input")
        return super().call(__context, __obj, *args, **kwargs)

    def format_string(self, s, args, kwargs, format_func=None):
        _check_format(s)
        return super().format_string(s, args, kwargs, format_func)


ENVIRONMENT = PromptSandbox()


class _Concats(NodeTransformer):
    """``a ~ b ~ c`` -> ``concat_guard__([a, b, c])``, innermost first."""

    def visit_Concat(self, node):
        self.generic_visit(node)
        items = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Call(nodes.Name(CONCAT_GUARD, "load"), [items], [], None, None, lineno=node.lineno)


def _guard_loops(tree):
    """Refuse what cannot be bounded; route every for loop's iterable and every ``~``
    through the budget."""
    for node in tree.find_all(_FORBIDDEN_NODES):
        raise SecurityError(f"{type(node).__name__.lower()} is not allowed in a prompt template (line {node.lineno})")
    for node in tree.find_all(nodes.Name):
        if node.name in (LOOP_GUARD, CONCAT_GUARD):
            raise SecurityError(f"{node.name} is a reserved name")
    tree = _Concats().visit(tree)
    for node in tree.find_all(nodes.For):
        if node.recursive:
            raise SecurityError(f"recursive loops are not allowed in a prompt template (line {node.lineno})")
        node.iter = nodes.Call(nodes.Name(LOOP_GUARD, "load"), [node.iter], [], None, None, lineno=node.lineno)
    return tree


@functools.lru_cache(maxsize=256)
def compile_source(source):
    """The compiled template of ``source`` (raises TemplateSyntaxError or SecurityError)."""
    tree = _guard_loops(ENVIRONMENT.parse(source))
    return ENVIRONMENT.from_string(tree)


def render(source, variables, budget):
    """``source`` rendered with ``variables`` within ``budget`` (raises TemplateLimit, Jinja's errors)."""
    template = compile_source(source)
    token = _budget.set(budget)
    try:
        parts, size = [], 0
        for part in template.generate(**variables, **{LOOP_GUARD: budget.loop, CONCAT_GUARD: budget.concat}):
            size += len(part)
            budget.check_size(size)
            budget.check_time()
            parts.append(part)
        return "".join(parts)
    finally:
        _budget.reset(token)
