"""A task source over HTTP that misbehaves, in a thread (tests and bench/fault_slow_drip.py):

- ``/drip.json``: the headers and ``[``, then one blank every ``every``
  seconds, and ``]`` after ``drip_for`` seconds (a slow-drip server: each
  read gets a byte within any socket timeout, the whole never comes);
- ``/big.json?bytes=N``: a JSON array of about N bytes without a
  Content-Length; ``/declared.json?bytes=N``: one that declares N bytes.

    with SlowSource(every=0.2) as server:
        url = server.url("/drip.json")
        server.requested.wait()   # a client is being dripped on
"""

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server_version = "slow-source/1"

    def do_GET(self):
        parts = urllib.parse.urlsplit(self.path)
        size = int(urllib.parse.parse_qs(parts.query).get("bytes", ["0"])[0])
        source = self.server.source
        source.requested.set()
        try:
            if parts.path == "/drip.json":
                self.drip(source)
            elif parts.path in ("/big.json", "/declared.json"):
                self.big(size, declared=parts.path == "/declared.json")
            else:
                self.send_error(404)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up: what a fetch past its limit does

    def drip(self, source):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()  # no Content-Length: the body ends when the connection does
        self.wfile.write(b"[")
        self.wfile.flush()
        waited = 0.0
        while waited < source.drip_for and not source.closing.wait(source.every):
            waited += source.every
            self.wfile.write(b" ")
            self.wfile.flush()
        self.wfile.write(b"]")

    def big(self, size, *, declared):
        record = json.dumps({"id": "x", "prompt": "p" * 1000}).encode()
        count = max(1, size // (len(record) + 1))
        body = b"[" + b",".join([record] * count) + b"]"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if declared:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class SlowSource:
    def __init__(self, every=0.2, drip_for=60.0):
        self.every = every
        self.drip_for = drip_for
        self.requested = threading.Event()
        self.closing = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.source = self
        self.thread = threading.Thread(target=self.server.serve_forever, name="slow-source", daemon=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
