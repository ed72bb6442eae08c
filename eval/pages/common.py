"""What every page shares: the login and query-string check, query values, provider lists."""

from contextlib import contextmanager
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest

from eval.providers import catalogue, pricing
from eval.storable import Unstorable, check_query, query_integer


class QueryRefused(BadRequest):
    """A query string a page will not read; its message says why and echoes no hostile text."""


@contextmanager
def _refused_as_bad_request():
    """A query value the database cannot take (eval/storable.py) as the page's 400."""
    try:
        yield
    except Unstorable as error:
        raise QueryRefused(error.message) from None


def page(view):
    """A page for logged-in users whose whole query string, read or not, is text
    the database can take; any other is the 400 page (``bad_request``)."""

    @wraps(view)
    def checked(request, *args, **kwargs):
        with _refused_as_bad_request():
            check_query(request.GET)
        return view(request, *args, **kwargs)

    return login_required(checked)


def integer(text, name):
    """An id from the query string: None for anything but digits, a 400 beyond the database's range."""
    with _refused_as_bad_request():
        return query_integer(text, name)


def cursor(request, name):
    return integer(request.GET.get(name, ""), name)


def choice(request, name, allowed):
    value = request.GET.get(name, "")
    return value if value in allowed else ""


def query(**params):
    """A query string of the non-empty ``params`` (for links that keep the filters)."""
    return urlencode({name: value for name, value in params.items() if value})


def provider_json(entry, *, judges=False):
    """A provider for the run buttons: its models, and prices so a paid launch can show its cost.
    Judge-only models (the catalogue's ``judge_only``) only with ``judges``, for a judge run's judge."""
    models = [m for m in entry.models() if judges or not m.judge_only]
    return {
        "name": entry.name,
        "label": entry.label,
        "demo": entry.demo,
        "max_temperature": entry.max_temperature,
        "models": [
            {"name": m.name, "max_tokens": m.max_tokens, "price": price(entry, m.name), "judge_only": m.judge_only}
            for m in models
        ],
    }


def providers_json(*, judges=False):
    """The configured providers that offer a model (for a judge run's judge: ``judges``)."""
    providers = (provider_json(entry, judges=judges) for entry in catalogue.configured())
    return [provider for provider in providers if provider["models"]]


def price(entry, model):
    """[USD per million input tokens, per million output] or None (free or unknown)."""
    found = pricing.price(entry, model)
    if found is None or found.free:
        return None
    return [float(found.input), float(found.output)]
