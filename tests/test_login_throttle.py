"""Login throttling (DESIGN "HTTP API": per username and per address; refused
attempts 429 with the reason and Retry-After; the admin login too), and the
client address behind the trusted proxies (FORWARDED_ALLOW_IPS)."""

import ipaddress
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.core.management import call_command
from django.db.models import F
from django.test import Client, RequestFactory

from eval.client_address import client_address
from tests.helpers import LiveServer, parallel

pytestmark = pytest.mark.django_db

LIMIT = 3
COOLOFF = 600
HOME = "203.0.113.10"
ELSEWHERE = "198.51.100.20"


@pytest.fixture
def throttled(plain_http):
    plain_http.LOGIN_FAILURE_LIMIT = LIMIT
    plain_http.LOGIN_COOLOFF_SECONDS = COOLOFF
    return plain_http


def log_in(address, username, password, path="/accounts/login/", **headers):
    client = Client(REMOTE_ADDR=address)
    response = client.post(path, {"username": username, "password": password}, **headers)
    return response, client


def logged_in(client):
    return SESSION_KEY in client.session


def fail(times, address, username, path="/accounts/login/"):
    return [log_in(address, username, "wrong", path)[0].status_code for _ in range(times)]


def age_attempts(seconds):
    """As if ``seconds`` had passed since every recorded failure."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=seconds))


def test_it_answers_a_wrong_password_with_the_form_until_the_limit(throttled, reviewer):
    assert fail(LIMIT, HOME, "alice") == [200] * (LIMIT - 1) + [429]
    response, client = log_in(ELSEWHERE, "alice", "pw-alice-123")
    assert response.status_code == 429 and not logged_in(client)


def test_it_locks_a_username_out_from_every_address(throttled, reviewer, staff):
    for n in range(LIMIT):
        fail(1, f"203.0.113.{n + 1}", "alice")
    response, client = log_in(ELSEWHERE, "alice", "pw-alice-123")
    assert response.status_code == 429 and not logged_in(client)
    page = response.content.decode()
    assert "Too many failed log-ins for this username." in page
    assert "from your address" not in page
    assert "Try again in 10 minutes" in page
    assert 0 < int(response["Retry-After"]) <= COOLOFF
    # Another user at those addresses is not affected (each is under its limit).
    response, client = log_in("203.0.113.1", "sam", "pw-sam-123")
    assert response.status_code == 302 and logged_in(client)


def test_it_locks_an_address_out_for_every_username(throttled, reviewer):
    for n in range(LIMIT):
        fail(1, HOME, f"guess-{n}")
    response, client = log_in(HOME, "alice", "pw-alice-123")
    assert response.status_code == 429 and not logged_in(client)
    assert "Too many failed log-ins from your address." in response.content.decode()
    response, client = log_in(ELSEWHERE, "alice", "pw-alice-123")
    assert response.status_code == 302 and logged_in(client)


def test_it_throttles_the_admin_login_too(throttled, staff):
    staff.is_superuser = True
    staff.save()
    assert fail(LIMIT, HOME, "sam", path="/admin/login/")[-1] == 429
    response, client = log_in(ELSEWHERE, "sam", "pw-sam-123", path="/admin/login/")
    assert response.status_code == 429 and not logged_in(client)
    assert int(response["Retry-After"]) > 0
    # The failures count on either form: the site's login is refused as well.
    assert log_in(ELSEWHERE, "sam", "pw-sam-123")[0].status_code == 429


def test_the_lockout_ends_after_the_cool_off_and_not_before(throttled, reviewer):
    fail(LIMIT, HOME, "alice")
    age_attempts(COOLOFF - 5)
    response, _ = log_in(HOME, "alice", "pw-alice-123")
    assert response.status_code == 429 and int(response["Retry-After"]) <= 5
    age_attempts(10)
    response, client = log_in(HOME, "alice", "pw-alice-123")
    assert response.status_code == 302 and logged_in(client)


def test_refused_attempts_do_not_extend_the_lockout(throttled, reviewer):
    fail(LIMIT, HOME, "alice")
    before = AccessAttempt.objects.get()
    assert fail(5, HOME, "alice") == [429] * 5
    after = AccessAttempt.objects.get()
    assert (after.failures_since_start, after.attempt_time) == (before.failures_since_start, before.attempt_time)


def test_an_operator_can_lift_a_lockout(throttled, reviewer):
    fail(LIMIT, HOME, "alice")
    call_command("axes_reset_username", "alice")
    response, client = log_in(HOME, "alice", "pw-alice-123")
    assert response.status_code == 302 and logged_in(client)


def test_a_json_client_gets_the_api_error_shape(throttled, reviewer):
    fail(LIMIT, HOME, "alice")
    response, _ = log_in(HOME, "alice", "pw-alice-123", HTTP_ACCEPT="application/json")
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["code"] == "too_many_attempts"
    assert "Try again in" in error["message"]
    assert int(response["Retry-After"]) > 0


def test_a_success_under_the_limit_is_not_throttled(throttled, reviewer):
    fail(LIMIT - 1, HOME, "alice")
    response, client = log_in(HOME, "alice", "pw-alice-123")
    assert response.status_code == 302 and logged_in(client)


def test_the_forwarded_address_counts_only_from_a_trusted_proxy(throttled, reviewer):
    throttled.FORWARDED_ALLOW_IPS = [ipaddress.ip_network("10.0.0.0/8")]
    proxy = {"HTTP_X_FORWARDED_FOR": HOME}
    for n in range(LIMIT):
        log_in("10.0.0.2", f"guess-{n}", "wrong", **proxy)
    assert log_in("10.0.0.2", "alice", "pw-alice-123", **proxy)[0].status_code == 429
    # Behind the same proxy, another client is not locked out with the first one.
    response, client = log_in("10.0.0.2", "alice", "pw-alice-123", HTTP_X_FORWARDED_FOR=ELSEWHERE)
    assert response.status_code == 302 and logged_in(client)
    # A client talking to us directly cannot pick the address it is counted under.
    for n in range(LIMIT):
        log_in(ELSEWHERE, f"other-{n}", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert log_in(ELSEWHERE, "alice", "pw-alice-123", HTTP_X_FORWARDED_FOR="192.0.2.99")[0].status_code == 429


def post_form(url, fields, cookie):
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), headers={"Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_wrong_passwords_gets_only_the_limit_checked(throttled, django_user_model):
    """django-axes counts before the password check and records after it: 30
    parallel wrong passwords all got checked under a limit of 3 until attempts
    on one username (or from one address) ran one at a time."""
    throttled.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]  # a real check's length
    throttled.CSRF_COOKIE_SECURE = throttled.SESSION_COOKIE_SECURE = False
    django_user_model.objects.create_user("alice", password="pw-alice-123")
    with LiveServer() as url:
        with urllib.request.urlopen(f"{url}/accounts/login/") as response:
            cookie = response.headers["Set-Cookie"].split(";")[0]
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode()).group(1)
        fields = {"username": "alice", "password": "wrong", "csrfmiddlewaretoken": token}
        statuses = parallel([lambda: post_form(f"{url}/accounts/login/", fields, cookie)] * 30, timeout=300)
    assert sorted(statuses) == [200] * (LIMIT - 1) + [429] * (30 - LIMIT + 1)
    assert AccessAttempt.objects.get().failures_since_start == LIMIT  # the password was checked LIMIT times


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("192.0.2.1", "", "192.0.2.1"),
        ("192.0.2.1", "203.0.113.10", "192.0.2.1"),  # not a trusted proxy: the header is ignored
        ("10.0.0.2", "203.0.113.10", "203.0.113.10"),
        ("10.0.0.2", "6.6.6.6, 203.0.113.10", "203.0.113.10"),  # the left part came from the client
        ("10.0.0.2", "203.0.113.10, 10.0.0.7", "203.0.113.10"),  # two proxies
        ("10.0.0.2", "10.0.0.9", "10.0.0.9"),  # a request from a proxy host itself
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", "not-an-address", "10.0.0.2"),
    ],
)
def test_client_address(settings, peer, forwarded, expected):
    settings.FORWARDED_ALLOW_IPS = [ipaddress.ip_network("10.0.0.0/8")]
    request = RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected
