#!/usr/bin/env python
"""Supervise the product's processes: gunicorn, the job worker(s), the sync daemon.

Each child runs in its own process group with its output prefixed by its
name. A child that dies is restarted with backoff (a crash loop is reported
loudly); SIGTERM/SIGINT are forwarded to every group, and stragglers are
killed after a grace period, so no process outlives the supervisor. Killed
outright (SIGKILL), it still takes its children along: the kernel sends them
SIGTERM (Linux, coreproject/supervision/pdeathsig.py).

It refuses to start (exit 1, naming the processes and how to stop them) beside
another supervisor of the same roles or the strays of a dead one, and when
GUNICORN_BIND's address is taken; once the web answers it prints its URL.
Its output never stops it: with stdout's reader gone (``| tee`` killed) its
lines go to stderr, then nowhere (coreproject/supervision/output.py).

    python run_services.py [--only web|worker|daemon] [--dry-run]
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from coreproject import env
from coreproject.supervision import address, guards
from coreproject.supervision.output import Lines
from coreproject.supervision.pdeathsig import die_with_parent

ROOT = Path(__file__).resolve().parent
PYTHON = sys.executable


STOP_MARGIN_SECONDS = 5  # past the workers' own grace, before stragglers are killed


def _setting(read):
    """A value through coreproject/env.py's checked reads (the bounds the settings use);
    a bad one ends run_services with the variable's name, not a traceback."""
    value, problems = env.checked(read)
    if problems:
        sys.exit("run_services: " + "; ".join(problems))
    return value


@dataclass
class Service:
    name: str
    argv: list
    role: str
    process: subprocess.Popen | None = None
    restarts: list = field(default_factory=list)  # monotonic times of recent restarts
    next_start: float = 0.0
    # A line that means restarting cannot help (the port is taken), and what to say then.
    fatal_line: re.Pattern | None = None
    fatal_message: str = ""
    fatal: bool = False
    pump: threading.Thread | None = None  # copies the child's output; ends at its EOF


def plan(only=None, workers=None):
    """The services to run, as (name, argv, role); ``workers`` defaults to WORKER_PROCESSES."""
    services = []
    if only in (None, "web"):
        bind, where = address.configured()
        services.append(
            Service(
                "web",
                [
                    PYTHON,
                    "-m",
                    "gunicorn",
                    "-c",
                    str(ROOT / "deploy" / "gunicorn.conf.py"),
                    "coreproject.wsgi:application",
                ],
                "web",
                fatal_line=address.IN_USE_LINE,
                fatal_message=address.in_use_message(bind, where),
            )
        )
    if only in (None, "worker"):
        count = _setting(env.worker_processes) if workers is None else workers
        for index in range(count):
            name = "worker" if count == 1 else f"worker{index + 1}"
            services.append(Service(name, [PYTHON, str(ROOT / "manage.py"), "process_llm_jobs"], "worker"))
    if only in (None, "daemon"):
        services.append(Service("daemon", [PYTHON, str(ROOT / "run_sync_daemon.py")], "daemon"))
    return services


class Supervisor:
    def __init__(self, services, *, grace=None, clock=time.monotonic, popen=subprocess.Popen, output=None):
        self.services = services
        if grace is None:
            grace = _setting(env.worker_shutdown_grace_seconds) + STOP_MARGIN_SECONDS
        self.grace = grace
        self.clock = clock
        self.popen = popen
        self.stopping = False
        self.stop_signal = None
        self.exit_code = 0
        self.announced = False
        self.width = max(len(s.name) for s in services)
        self.output = output or Lines()

    def log(self, name, line):
        self.output.write(f"{name:<{self.width}} | {line}")

    def start(self, service):
        service.fatal = False
        service.process = self.popen(
            service.argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: signals reach grandchildren too
            preexec_fn=die_with_parent(),  # SIGTERM when we die, even by SIGKILL (called from the main thread)
            text=True,
            bufsize=1,
        )
        service.pump = threading.Thread(target=self._pump, args=(service, service.process), daemon=True)
        service.pump.start()
        self.log("supervisor", f"started {service.name} (pid {service.process.pid})")
        if service.role == "web" and not self.announced:
            self.announced = True
            threading.Thread(target=self._announce, args=(service, service.process), daemon=True).start()

    def _pump(self, service, process):
        for line in process.stdout:
            if service.fatal_line and service.fatal_line.search(line):
                service.fatal = True
            self.log(service.name, line.rstrip("\n"))

    def _announce(self, service, process):
        """Print the URL once the web answers HTTP: the line a first run looks for.
        Not before: a connection alone succeeds while gunicorn's worker still boots."""
        _, where = address.configured()
        url = address.url(where)
        if url is None:  # a Unix socket: for a proxy, not a browser
            return
        while process.poll() is None and not self.stopping:
            if address.answers(where) and not service.fatal:  # not another server on a taken port
                self.log("supervisor", f"web is up: open {url}")
                return
            time.sleep(0.2)
        self.announced = False  # it died first: announce the next one

    def signal_all(self, signum):
        for service in self.services:
            if service.process and service.process.poll() is None:
                try:
                    os.killpg(service.process.pid, signum)
                except ProcessLookupError:
                    pass

    def request_stop(self, signum, _frame=None):
        """Signal handler: only records the wish (logging here could deadlock on
        the output's lock, held by the code it interrupted); run() says it."""
        if not self.stopping:
            self.stop_signal = signum
        self.stopping = True

    def run(self):
        for service in self.services:
            self.start(service)
        while not self.stopping:
            time.sleep(0.2)
            now = self.clock()
            for service in self.services:
                if service.process is None:
                    if now >= service.next_start and not self.stopping:
                        self.start(service)
                    continue
                code = service.process.poll()
                if code is not None:
                    self.exited(service, code, now)
        if self.stop_signal is not None:
            self.log("supervisor", f"got {signal.Signals(self.stop_signal).name}: stopping all services")
        return self.shutdown()

    def exited(self, service, code, now):
        service.process = None
        service.pump.join(1.0)  # its last lines may say why it exited
        if service.fatal:  # restarting would only fail the same way, forever
            self.log("supervisor", f"!!! {service.name} cannot start: {service.fatal_message}")
            self.log("supervisor", "stopping all services")
            self.exit_code = 1
            self.stopping = True
            return
        service.restarts = [t for t in service.restarts if now - t < 60] + [now]
        delay = min(30.0, 0.5 * 2 ** (len(service.restarts) - 1))
        service.next_start = now + delay
        if len(service.restarts) >= 5:
            self.log(
                "supervisor",
                f"!!! {service.name} is crash-looping: {len(service.restarts)} exits "
                f"in a minute (last exit code {code}); next restart in {delay:.0f} s",
            )
        else:
            self.log("supervisor", f"{service.name} exited with code {code}; restarting in {delay:.1f} s")

    def shutdown(self):
        self.signal_all(signal.SIGTERM)
        deadline = self.clock() + self.grace
        while self.clock() < deadline and any(s.process and s.process.poll() is None for s in self.services):
            time.sleep(0.1)
        stragglers = [s.name for s in self.services if s.process and s.process.poll() is None]
        if stragglers:
            self.log("supervisor", f"killing {', '.join(stragglers)} after {self.grace:.0f} s grace")
            self.signal_all(signal.SIGKILL)
        for service in self.services:
            if service.process:
                service.process.wait()
        self.log("supervisor", "all services stopped")
        return self.exit_code


def state_dir():
    """Where the supervisor keeps its locks (and its children their files):
    ``DJANGO_LOCAL_DIR`` as the settings read it, else ``.local``."""
    path = Path(os.environ.get("DJANGO_LOCAL_DIR") or ROOT / ".local").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def refusal(services, directory, locks):
    """Why this supervisor must not start (another one runs these roles, strays
    of a dead one run them, the web's port is taken), or None."""
    roles = {service.role for service in services}
    busy = locks.acquire(guards.describe_self())
    if busy:
        return guards.busy_message(busy)
    strays = guards.find_strays(roles, directory, ROOT)
    if strays:
        return guards.strays_message(strays)
    bind, where = address.configured()
    if "web" in roles and address.in_use(where):
        return f"run_services: refusing to start: {address.in_use_message(bind, where)}"
    return None


def prepare_metrics_dir():
    """Point every child at one PROMETHEUS_MULTIPROC_DIR (eval/metrics.py): the
    variable's value if set, else ``<DJANGO_LOCAL_DIR or .local>/prometheus``.
    Cleaned at start: the sample files of processes that are gone are removed
    (those of live processes are kept, so two supervisors on one machine, e.g.
    ``--only web`` and ``--only worker``, can share the directory)."""
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or state_dir() / "prometheus")
    path.mkdir(parents=True, exist_ok=True)
    for sample in path.glob("*_*.db"):
        pid = sample.stem.rpartition("_")[2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            sample.unlink(missing_ok=True)
        except PermissionError:  # alive, someone else's
            pass
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["web", "worker", "daemon"], help="run one role only")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    args = parser.parse_args(argv)
    workers = _setting(env.worker_processes)
    grace = _setting(env.worker_shutdown_grace_seconds) + STOP_MARGIN_SECONDS
    services = plan(args.only, workers=workers)
    if args.dry_run:
        for service in services:
            print(f"{service.name}: {' '.join(service.argv)}")
        return 0
    if not services:
        print("nothing to run (WORKER_PROCESSES=0?)", file=sys.stderr)
        return 1
    directory = state_dir()
    locks = guards.RoleLocks(directory, sorted({service.role for service in services}))
    refused = refusal(services, directory, locks)
    if refused:
        locks.release()
        print(refused, file=sys.stderr)
        return 1
    os.environ[guards.MARK] = str(directory)  # marks our children (guards.find_strays)
    prepare_metrics_dir()
    supervisor = Supervisor(services, grace=grace)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
