"""gunicorn as deploy/gunicorn.conf.py runs it: one listening socket per worker
(SO_REUSEPORT), connections spread over the workers, and a stopping worker
that closes its socket at once (coreproject/gunicorn_worker.py)."""

import http.client
import os
import runpy
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gunicorn import glogging
from gunicorn import sock as gunicorn_sock
from gunicorn.config import Config

from coreproject.gunicorn_worker import ThreadWorker
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT spreads connections on Linux only")


def _tcp_sockets(port):
    """{inode: state} of the IPv4 TCP sockets on local port `port` ("0A" listen, "01" established)."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            found[fields[9]] = fields[3]
    return found


def _socket_inodes(pid):
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _gunicorn(port, tmp_path, **popen):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESS_LOG": "/dev/null",
        "DJANGO_DEBUG": "1",
        "DJANGO_LOCAL_DIR": str(tmp_path / "local"),
    }
    env.pop("GUNICORN_REUSE_PORT", None)
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **popen,
    )


def _children(pid):
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@linux_only
@pytest.mark.timeout(60)
def test_each_worker_listens_on_its_own_socket_and_connections_spread(tmp_path):
    port = free_port()
    server = _gunicorn(port, tmp_path, start_new_session=True)
    connections = []
    try:
        deadline = time.monotonic() + 30
        while True:
            workers = _children(server.pid)
            listening = [i for i, state in _tcp_sockets(port).items() if state == "0A"]
            if len(workers) == 2 and len(listening) == 2:
                break
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, f"workers {workers}, listening sockets {listening}"
            time.sleep(0.1)
        # One listening socket in each worker, none in the master.
        assert not set(listening) & _socket_inodes(server.pid)
        for worker in workers:
            assert len(set(listening) & _socket_inodes(worker)) == 1

        for _ in range(40):  # kept-alive connections, as a balancer or wrk holds them
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            assert response.status == 200 and response.read() == b'{"status": "ok"}'
            connections.append(connection)
        established = {i for i, state in _tcp_sockets(port).items() if state == "01"}
        held = [len(established & _socket_inodes(worker)) for worker in workers]
        assert sum(held) == 40
        # The kernel hashes each connection to a socket: 40 split about evenly
        # (outside 8..32 has odds below 1 in 10^4; a shared socket gave 50/14 of 64).
        assert min(held) >= 8, held
    finally:
        for connection in connections:
            connection.close()
        os.killpg(server.pid, 15)
        server.wait(30)
    log = server.stderr.read().decode()
    # Where it listens, said once and with the address (gunicorn's own line was "Listening at:  (927)").
    assert f"Workers listen at: 127.0.0.1:{port}" in log
    assert "Listening at:" not in log, log[-2000:]


@linux_only
def test_a_stopping_worker_closes_its_listening_socket_at_once(tmp_path):
    """Not when the connection cap pauses accepting (alive), only at stop: the
    kernel then routes new connections to the other workers' sockets instead
    of queueing them on one that is never accepted again."""
    port = free_port()
    cfg = Config()
    cfg.set("bind", f"127.0.0.1:{port}")
    cfg.set("reuse_port", True)
    cfg.set("worker_tmp_dir", str(tmp_path))
    log = glogging.Logger(cfg)
    worker = ThreadWorker(0, os.getppid(), gunicorn_sock.create_sockets(cfg, log), None, 30, cfg, log)
    worker.poller = selectors.DefaultSelector()
    try:
        worker.set_accept_enabled(True)
        worker.set_accept_enabled(False)  # the worker_connections cap: paused, not stopping
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # queued in the backlog, for when accepting resumes

        worker.set_accept_enabled(True)
        worker.alive = False
        worker.set_accept_enabled(False)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
    finally:
        for listener in worker.sockets:
            listener.close()
        worker.poller.close()
        worker.tmp.close()


@linux_only
@pytest.mark.timeout(60)
def test_a_second_server_on_a_port_in_use_fails_to_start(tmp_path):
    """SO_REUSEPORT would let it bind beside the first and take half its connections."""
    port = free_port()
    with socket.socket() as first:
        first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        first.bind(("127.0.0.1", port))
        first.listen()
        second = _gunicorn(port, tmp_path)
        _, stderr = second.communicate(timeout=30)
    assert second.returncode != 0
    assert f"127.0.0.1:{port} is already in use" in stderr.decode()


@pytest.mark.parametrize(
    ("workers", "reuse_port"),
    [("1", False), ("2", sys.platform == "linux")],
)
def test_one_worker_keeps_the_shared_socket(monkeypatch, workers, reuse_port):
    """While a lone worker restarts, the master's socket queues connections; its own would refuse them."""
    monkeypatch.delenv("GUNICORN_REUSE_PORT", raising=False)
    monkeypatch.setenv("GUNICORN_WORKERS", workers)
    config = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    assert config["reuse_port"] is reuse_port
    assert config["worker_class"] == "coreproject.gunicorn_worker.ThreadWorker"
