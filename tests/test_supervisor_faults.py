"""run_services.py under faults (issue "Operations under faults", items 4 and
10): killed outright it takes its children along; it refuses to start beside
another supervisor of its roles or the strays of a dead one, naming them; a
taken GUNICORN_BIND stops it at once with a message instead of a crash loop;
once the web answers it prints the URL to open; its stdout's reader gone, it
still stops its children."""

import errno
import http.server
import io
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import run_services
from coreproject.supervision import address, guards
from coreproject.supervision.output import Lines
from tests.conftest import test_database_url
from tests.helpers import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")


class Supervised:
    """run_services.py in a child process, its output collected line by line."""

    def __init__(self, *args, env):
        self.process = subprocess.Popen(
            [sys.executable, "run_services.py", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self):
        return "".join(self.lines)

    def wait_for_text(self, text, timeout=60):
        wait_for(lambda: text in self.output, timeout=timeout, message=f"{text!r} in the output")

    def finish(self, timeout=60):
        code = self.process.wait(timeout=timeout)
        self.reader.join(10)
        return code

    def stop(self):
        """Even when an assertion failed: SIGTERM, then SIGKILL for every group it started."""
        groups = {pgid for pid, pgid, _state in processes() if _ppid(pid) == self.process.pid}
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        kill_groups(groups)


def _stat(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return fields[0], int(fields[1]), int(fields[2])  # state, ppid, pgid


def _ppid(pid):
    try:
        return _stat(pid)[1]
    except OSError:
        return None


def processes():
    """(pid, pgid, state) of every process now."""
    rows = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, _, pgid = _stat(entry.name)
            except OSError:
                continue
            rows.append((int(entry.name), pgid, state))
    return rows


def live_members(groups):
    """The processes (zombies aside: they are dead) of these process groups."""
    return sorted(pid for pid, pgid, state in processes() if pgid in groups and state != "Z")


def kill_groups(groups):
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def env(tmp_path):
    """A private state directory (its locks are this test's alone) and a free web port."""
    values = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DJANGO_LOCAL_DIR": str(tmp_path / "local"),
        "GUNICORN_BIND": f"127.0.0.1:{free_port()}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_GRACEFUL_TIMEOUT": "2",
        "WORKER_PROCESSES": "1",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "1",
        "SYNC_INTERVAL_SECONDS": "1",
        # Static files from the finders: with DEBUG off and nothing collected gunicorn's
        # worker refuses to boot (eval.E040), and the web would never answer.
        "DJANGO_DEBUG": "1",
    }
    values.pop("PROMETHEUS_MULTIPROC_DIR", None)
    values.pop(guards.MARK, None)
    return values


@pytest.fixture
def supervise(env):
    """Start run_services.py with ``env``; every one started is stopped at teardown,
    whatever the test's outcome (one left behind would outlive the test run)."""
    started = []

    def start(*args, **overrides):
        started.append(Supervised(*args, env={**env, **overrides}))
        return started[-1]

    yield start
    for supervised in reversed(started):
        supervised.stop()


@linux_only
@pytest.mark.django_db(transaction=True)
def test_it_takes_its_children_along_when_killed_outright(env, supervise):
    supervisor = supervise()
    port = env["GUNICORN_BIND"].rpartition(":")[2]
    groups = set()
    try:
        supervisor.wait_for_text(f"web is up: open http://127.0.0.1:{port}/")
        supervisor.wait_for_text("started daemon")
        children = wait_for(
            lambda: (
                (found := [pid for pid, _, _ in processes() if _ppid(pid) == supervisor.process.pid])
                and len(found) == 3
                and found
            ),
            message="web, worker and daemon",
        )
        groups = set(children)  # each child leads its own process group
        assert len(live_members(groups)) > 3  # gunicorn's worker is in the web's group
        os.kill(supervisor.process.pid, signal.SIGKILL)
        supervisor.process.wait(timeout=10)
        # Generous: each stops gracefully (grace 1-2 s here) on a busy box.
        wait_for(lambda: not live_members(groups), timeout=30, message="every child of the killed supervisor to exit")
    finally:
        kill_groups(groups)


@linux_only
@pytest.mark.django_db(transaction=True)
def test_it_refuses_to_start_beside_another_supervisor_of_its_roles(supervise):
    first = supervise("--only", "worker")
    first.wait_for_text("started worker")
    for args in (["--only", "worker"], []):
        second = supervise(*args)
        assert second.finish() == 1
        assert "refusing to start: another run_services.py supervises these roles" in second.output
        assert f"worker: pid {first.process.pid}: {sys.executable} run_services.py --only worker" in second.output
        assert f"kill -TERM {first.process.pid}" in second.output
        assert "started" not in second.output
    # Other roles are free: the systemd units run --only web, worker and daemon side by side.
    beside = supervise("--only", "daemon")
    beside.wait_for_text("started daemon")
    beside.stop()
    assert beside.process.returncode == 0
    # The lock goes with its holder, however it died: no stale file blocks the next start.
    groups = {pid for pid, _, _ in processes() if _ppid(pid) == first.process.pid}
    first.process.kill()
    first.process.wait(timeout=10)
    wait_for(lambda: not live_members(groups), message="its worker to stop")
    supervise("--only", "worker").wait_for_text("started worker")


def fake_stray(env, *argv):
    """A process that looks like one a dead supervisor left: this project's, our
    state directory in its environment, adopted by init (its parent exited)."""
    marked = {**env, guards.MARK: str(Path(env["DJANGO_LOCAL_DIR"]).resolve())}
    script = f'"$0" -c "import time; time.sleep(120)" {" ".join(argv)} >/dev/null 2>&1 & echo $!'
    out = subprocess.run(["sh", "-c", script, sys.executable], cwd=ROOT, env=marked, capture_output=True, text=True)
    pid = int(out.stdout)
    wait_for(lambda: _ppid(pid) != os.getpid(), message="the stray's adoption")
    if _ppid(pid) != 1:
        os.kill(pid, signal.SIGKILL)
        pytest.skip("orphans here are adopted by a subreaper, not PID 1")
    return pid


@linux_only
def test_it_refuses_to_start_beside_the_strays_of_a_dead_supervisor(env, supervise):
    Path(env["DJANGO_LOCAL_DIR"]).mkdir()
    stray = fake_stray(env, "manage.py", "process_llm_jobs")
    try:
        second = supervise("--only", "worker")
        assert second.finish() == 1
        assert "processes of a run_services.py that died are still running" in second.output
        assert f"pid {stray} (worker): {sys.executable} -c import time; time.sleep(120) manage.py process_llm_jobs" in (
            second.output
        )
        assert f"kill -TERM {stray}" in second.output
        assert "started" not in second.output
    finally:
        os.kill(stray, signal.SIGKILL)


@linux_only
def test_strays_are_this_instances_orphans_only(env, tmp_path):
    local = Path(env["DJANGO_LOCAL_DIR"])
    local.mkdir()
    ours = fake_stray(env, "run_sync_daemon.py")
    other = fake_stray({**env, "DJANGO_LOCAL_DIR": str(tmp_path)}, "run_sync_daemon.py")  # another instance's
    worker = fake_stray(env, "manage.py", "process_llm_jobs")
    try:
        found = guards.find_strays({"daemon"}, local.resolve(), ROOT)
        assert [(s.pid, s.role) for s in found] == [(ours, "daemon")]
        both = guards.find_strays({"daemon", "worker"}, local.resolve(), ROOT)
        assert sorted(s.pid for s in both) == sorted([ours, worker])
    finally:
        for pid in (ours, other, worker):
            os.kill(pid, signal.SIGKILL)


def test_a_taken_port_stops_it_at_once_naming_gunicorn_bind(supervise):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        web = supervise("--only", "web", GUNICORN_BIND=f"127.0.0.1:{port}")
        assert web.finish() == 1
    assert f"127.0.0.1:{port} is already in use" in web.output
    assert f"GUNICORN_BIND sets the address the web serves on (now GUNICORN_BIND=127.0.0.1:{port})" in web.output
    assert "started" not in web.output


class ExitingAtOnce:
    """A Popen stand-in: gunicorn that found its port taken once it tried to bind."""

    starts = 0

    def __init__(self, argv, **kwargs):
        type(self).starts += 1
        self.pid = 4242
        self.stdout = io.StringIO(
            "[INFO] Starting gunicorn 23.0.0\n[ERROR] Connection in use: ('127.0.0.1', 8000)\n"
            "[ERROR] Can't connect to ('127.0.0.1', 8000)\n"
        )

    def poll(self):
        return 1

    def wait(self):
        return 1


def test_a_web_that_exits_on_a_taken_port_stops_it_instead_of_crash_looping(capsys, monkeypatch):
    """The port taken between the check and gunicorn's bind: no restart, exit 1."""
    monkeypatch.setenv("GUNICORN_BIND", "127.0.0.1:8000")
    services = run_services.plan("web")
    supervisor = run_services.Supervisor(services, grace=0, popen=ExitingAtOnce)
    assert supervisor.run() == 1
    out = capsys.readouterr().out
    assert ExitingAtOnce.starts == 1
    assert "!!! web cannot start: 127.0.0.1:8000 is already in use" in out
    assert "GUNICORN_BIND=127.0.0.1:8000" in out
    assert "restarting" not in out and "web is up" not in out


def test_the_announced_url_is_where_a_browser_reaches_the_bind():
    assert address.url(("127.0.0.1", 8000)) == "http://127.0.0.1:8000/"
    assert address.url(("0.0.0.0", 8080)) == "http://127.0.0.1:8080/"
    assert address.url(("::", 8000)) == "http://[::1]:8000/"
    assert address.url("/run/eval.sock") is None


def test_the_web_is_up_when_it_answers_http_not_when_a_connection_is_accepted():
    """gunicorn's arbiter listens before its worker boots: a connection alone succeeded
    and "web is up" came before anything could answer (CI saw no worker in the group)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts into the backlog, never answers
        assert not address.answers(silent.getsockname(), timeout=0.3)
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        assert address.answers(server.server_address)  # a 501 is an answer: the web is up
    finally:
        thread.join(5)
        server.server_close()


def test_a_malformed_gunicorn_bind_is_named(monkeypatch):
    monkeypatch.setenv("GUNICORN_BIND", "127.0.0.1:http")
    with pytest.raises(SystemExit, match="GUNICORN_BIND=127.0.0.1:http is not an address to serve on"):
        run_services.plan("web")


class ClosedPipe(io.StringIO):
    """A stream whose reader is gone: every write is EPIPE."""

    def write(self, text):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_its_lines_go_to_the_next_stream_once_a_pipe_is_closed():
    spare = io.StringIO()
    lines = Lines([ClosedPipe(), spare])
    lines.write("one")
    lines.write("two")
    assert spare.getvalue() == "one\ntwo\n"
    closed = io.StringIO()
    closed.close()
    nowhere = Lines([ClosedPipe(), closed])
    nowhere.write("dropped")  # no stream left: the line is dropped, nothing raised
    nowhere.write("dropped too")


def test_the_signal_handler_only_records_the_wish_and_run_says_it():
    """Writing from the handler could raise (EPIPE) or deadlock on the output's
    lock held by the code it interrupted; the main loop says it instead."""
    said = io.StringIO()
    supervisor = run_services.Supervisor(
        run_services.plan("worker"), grace=0, popen=ExitingAtOnce, output=Lines([said])
    )
    supervisor.request_stop(signal.SIGTERM)
    assert said.getvalue() == "" and supervisor.stopping
    assert supervisor.run() == 0
    own = [line for line in said.getvalue().splitlines() if line.startswith("supervisor")]
    assert own[-2:] == ["supervisor | got SIGTERM: stopping all services", "supervisor | all services stopped"]


def _read_until(pipe, text, timeout=60):
    """Read ``pipe`` (bytes) until ``text`` has come; what came."""
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {text!r}; got {seen[-2000:]!r}"
        if select.select([pipe], [], [], left)[0]:
            chunk = os.read(pipe.fileno(), 65536)
            assert chunk, f"the output ended before {text!r}: {seen[-2000:]!r}"
            seen += chunk
    return seen.decode()


@linux_only
@pytest.mark.sqlite_pass_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stderr", ["a file", "the same pipe"])
def test_a_closed_output_pipe_does_not_keep_it_from_stopping_its_children(env, tmp_path, stderr):
    """``run_services.py | tee log`` with tee gone: every line it writes meets
    EPIPE. SIGTERM still stops its children, and it exits 0; its lines go on to
    stderr (none when stderr was that pipe too: ``2>&1 | tee``)."""
    errors = (tmp_path / "stderr.txt").open("w+")
    process = subprocess.Popen(
        [sys.executable, "run_services.py", "--only", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if stderr == "the same pipe" else errors,
    )
    groups = set()
    try:
        _read_until(process.stdout, "started: transport=")  # the worker's own line, through the pump
        groups = {pid for pid, _, _ in processes() if _ppid(pid) == process.pid}  # each leads its group
        assert len(groups) == 1
        process.stdout.close()  # tee is gone
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not live_members(groups)  # it waited for its child before exiting
    finally:
        if process.poll() is None:
            process.kill()
        kill_groups(groups)
    errors.seek(0)
    said = errors.read()
    assert "Traceback" not in said and "BrokenPipeError" not in said, said
    if stderr == "a file":
        assert "supervisor | got SIGTERM: stopping all services" in said
        assert said.endswith("supervisor | all services stopped\n"), said
