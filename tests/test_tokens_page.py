"""/tokens/: a creation answers with a redirect (a reload makes no second
token), the secret is shown once, and at 400 px every token's Revoke button is
on screen."""

import pytest

from eval.models import ApiToken
from tests import browser_support as support
from tests.helpers import login

browser, server, page, user, web_settings = (
    support.browser,
    support.server,
    support.page,
    support.user,
    support.web_settings,
)


@pytest.fixture(autouse=True)
def _plain_http(plain_http):
    """Plain HTTP test clients (tests/conftest.py)."""


@pytest.mark.django_db
def test_creating_a_token_redirects_and_shows_the_secret_once(reviewer):
    client = login(reviewer)
    response = client.post("/tokens/", {"name": "laptop"})
    assert response.status_code == 302 and response["Location"] == "/tokens/"
    shown = client.get("/tokens/").content.decode()
    token = ApiToken.objects.get(user=reviewer)
    secret = shown.split('<pre id="new-token" class="token">')[1].split("</pre>")[0]
    assert ApiToken.authenticate(secret) == reviewer and secret.startswith(token.prefix)
    assert 'id="new-token"' not in client.get("/tokens/").content.decode()  # once only
    assert ApiToken.objects.filter(user=reviewer).count() == 1


@pytest.mark.django_db
def test_a_refused_creation_shows_the_reason_without_redirecting(reviewer):
    response = login(reviewer).post("/tokens/", {"name": "  "})
    assert response.status_code == 200 and b"Give the token a name." in response.content
    assert not ApiToken.objects.exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_reload_after_creating_makes_no_second_token_and_revoke_fits_at_400px(page, user):
    page.set_viewport_size({"width": 400, "height": 800})
    page.goto("/tokens/")
    page.fill("input[name=name]", "phone")
    page.click("form.token-form button[type=submit]")
    page.wait_for_selector("#new-token")
    page.reload()
    page.wait_for_selector("table.tokens")
    assert ApiToken.objects.filter(user=user).count() == 1
    assert page.locator("#new-token").count() == 0
    revoke = page.locator("table.tokens button.danger").first.bounding_box()
    assert revoke["x"] >= 0 and revoke["x"] + revoke["width"] <= 400
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
