"""The template context every page gets: ``can``, what the user may do
(eval/access.py), so no template spells a permission rule itself."""

from django.contrib.auth.models import AnonymousUser

from eval.access import Capabilities


def capabilities(request):
    return {"can": Capabilities(getattr(request, "user", None) or AnonymousUser())}
