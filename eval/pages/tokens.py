"""The caller's API tokens: create (shown once) and revoke."""

from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from eval.models import ApiToken
from eval.pages.common import page

MAX_TOKENS_PER_USER = 20


NEW_TOKEN_KEY = "eval:new-token"


@page
def tokens(request):
    error = ""
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:100]
        if not name:
            error = "Give the token a name."
        elif ApiToken.objects.active().filter(user=request.user).count() >= MAX_TOKENS_PER_USER:
            error = f"You already have {MAX_TOKENS_PER_USER} active tokens; revoke one first."
        else:
            # Post/redirect/get: a reload must not post again and make a second token.
            # The secret waits in the session for the one GET that shows it.
            _, request.session[NEW_TOKEN_KEY] = ApiToken.issue(request.user, name)
            return redirect("tokens")
    created = request.session.pop(NEW_TOKEN_KEY, None) if request.method == "GET" else None
    rows = ApiToken.objects.filter(user=request.user)
    response = render(request, "eval/tokens.html", {"tokens": rows, "created": created, "error": error})
    response["Cache-Control"] = "no-store"  # the new token is shown once
    return response


@page
@require_POST
def revoke_token(request, token_id):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    token.revoke()
    return redirect("tokens")
