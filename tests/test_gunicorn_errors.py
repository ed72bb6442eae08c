"""gunicorn as deployed (deploy/gunicorn.conf.py): every URL the API allows
fits its request line, and its own refusals come in the API's JSON error
shape, not HTML (coreproject/gunicorn_errors.py)."""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from gunicorn import util
from gunicorn.workers import base

from eval.api.schemas import MAX_IDS, MAX_SEARCH_CHARS
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent


def _start(port, tmp_path, **env):
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_ACCESS_LOG": "/dev/null",
        "DJANGO_DEBUG": "1",
        "DJANGO_LOCAL_DIR": str(tmp_path / "local"),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _raw(port, request: bytes):
    """The status and body of one raw HTTP/1.1 exchange."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    process = _start(port, tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.2)
    yield port
    process.terminate()
    process.wait(timeout=30)


def get(port, target, *extra_headers):
    lines = [f"GET {target} HTTP/1.1", "Host: localhost", "Connection: close", *extra_headers]
    return _raw(port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def test_the_longest_job_list_the_api_allows_reaches_the_api(server):
    ids = "%2C".join(str(uuid.uuid4()) for _ in range(MAX_IDS))
    status, headers, body = get(server, f"/api/jobs?ids={ids}")
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthenticated"


def test_the_longest_search_the_api_allows_reaches_the_api(server):
    q = "%F0%9F%98%80" * MAX_SEARCH_CHARS  # 500 four-byte characters, percent-encoded
    status, _, body = get(server, f"/api/tasks?q={q}&status=open")
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthenticated"


def test_a_request_line_over_the_limit_is_a_json_414(server):
    status, headers, body = get(server, "/api/tasks?q=" + "x" * 9000)
    assert status == 414 and headers["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "uri_too_long" and "8190" in error["message"]


@pytest.mark.parametrize("header", ["Idempotency-Key", "Authorization", "If-None-Match"])
def test_a_control_byte_in_a_header_is_a_json_400(server, header):
    status, headers, body = get(server, "/api/tasks", f"{header}: abc\x01def")
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "invalid"


def test_gunicorn_still_writes_its_errors_through_util_write_error():
    """The seam coreproject/gunicorn_errors.py replaces: fails the day gunicorn renames it."""
    assert callable(util.write_error) and callable(util.write_nonblock)
    assert "util.write_error(" in Path(base.__file__).read_text()


def test_without_collected_static_files_and_debug_off_gunicorn_refuses_to_start(tmp_path):
    process = _start(
        free_port(),
        tmp_path,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="k" * 60,
        DJANGO_STATIC_ROOT=str(tmp_path / "no-static"),
    )
    try:
        _, stderr = process.communicate(timeout=90)
    finally:
        process.kill()
    assert process.returncode != 0
    assert "no static files manifest" in stderr and "collectstatic" in stderr
