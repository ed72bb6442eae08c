"""The template context every page gets: ``can``, what the user may do
(eval/access.py), so no template spells a permission rule itself; and
``page_urls``, the pages' own URLs with an ``__id__`` placeholder, so no
script spells a URL either (base.html puts them on <body>; api.js fills them)."""

from functools import cache

from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

from eval.access import Capabilities

_SENTINEL = 987654321  # an id the <int:...> converters take, replaced by the placeholder


def capabilities(request):
    return {"can": Capabilities(getattr(request, "user", None) or AnonymousUser())}


@cache
def _page_urls():
    return {
        name: reverse(route, args=[_SENTINEL]).replace(str(_SENTINEL), "__id__")
        for name, route in (("task", "review"), ("run", "run-detail"))
    }


def page_urls(request):
    return {"page_urls": _page_urls()}
