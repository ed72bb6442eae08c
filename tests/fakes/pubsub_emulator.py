"""Find and run the official Google Cloud Pub/Sub emulator for integration tests.

The emulator ships as the Debian package ``google-cloud-cli-pubsub-emulator``:
a Java program started by ``platform/pubsub-emulator/bin/cloud-pubsub-emulator``
under the Cloud SDK root (the parent of the ``bin/`` that holds ``gcloud``).

    with PubSubEmulator() as emulator:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
        ...

It keeps all state in memory, starts in a couple of seconds and is best
started once per test module or session.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

PACKAGE = "google-cloud-cli-pubsub-emulator"
LAUNCHER_RELPATH = os.path.join("platform", "pubsub-emulator", "bin", "cloud-pubsub-emulator")
READY_LINE = "Server started, listening on"


def _java_available() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        return os.access(os.path.join(java_home, "bin", "java"), os.X_OK)
    return shutil.which("java") is not None


def _candidates() -> list[str]:
    found: list[str] = []
    # 1. The SDK that `gcloud` on PATH belongs to (/usr/bin/gcloud is a symlink
    #    into /usr/lib/google-cloud-sdk/bin/ on Debian).
    gcloud = shutil.which("gcloud")
    if gcloud:
        sdk_root = os.path.dirname(os.path.dirname(os.path.realpath(gcloud)))
        found.append(os.path.join(sdk_root, LAUNCHER_RELPATH))
    # 2. Wherever the Debian package put it.
    if shutil.which("dpkg"):
        try:
            listing = subprocess.run(
                ["dpkg", "-L", PACKAGE], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        found += [line.strip() for line in listing.splitlines() if line.strip().endswith(LAUNCHER_RELPATH)]
    # 3. A launcher that is itself on PATH.
    on_path = shutil.which("cloud-pubsub-emulator")
    if on_path:
        found.append(on_path)
    return found


def find_emulator() -> str | None:
    """Return the path of the emulator launcher, or None if it (or Java) is missing."""
    if not _java_available():
        return None
    for path in _candidates():
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmulatorError(RuntimeError):
    """The emulator could not be found or did not start."""


class PubSubEmulator:
    """One emulator process on a free local port, in its own process group."""

    def __init__(self, launcher: str | None = None, bind_host: str = "127.0.0.1") -> None:
        self.launcher = launcher or find_emulator()
        self.bind_host = bind_host
        self.port: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lines: list[str] = []
        self._ready = threading.Event()

    @property
    def host(self) -> str:
        """The value for PUBSUB_EMULATOR_HOST, e.g. "127.0.0.1:8519"."""
        if self.port is None:
            raise EmulatorError("emulator not started")
        return f"{self.bind_host}:{self.port}"

    @property
    def output(self) -> str:
        """Everything the emulator printed so far (stdout and stderr merged)."""
        return "".join(self._lines)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30) -> str:
        """Start the emulator and wait until it listens; return its host:port."""
        if self.running:
            return self.host
        if not self.launcher:
            raise EmulatorError(f"Pub/Sub emulator not found (install the {PACKAGE} package and Java)")
        # A free port can be taken between probing and binding: try a few.
        deadline = time.monotonic() + timeout
        for _attempt in range(3):
            if self._start_once(deadline):
                atexit.register(self.stop)
                return self.host
            if "address already in use" not in self.output.lower():
                break
        output = self.output
        self.stop()
        raise EmulatorError(f"Pub/Sub emulator did not start within {timeout} s; output:\n{output}")

    def _start_once(self, deadline: float) -> bool:
        self.stop()
        self.port = _free_port(self.bind_host)
        self._lines = []
        self._ready.clear()
        self._proc = subprocess.Popen(
            [self.launcher, f"--host={self.bind_host}", f"--port={self.port}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # the ready line goes to stderr (java.util.logging)
            text=True,
            errors="replace",
            start_new_session=True,  # own process group: stop() kills java and anything it spawned
        )
        # Drain the pipe for the whole life of the process so it never fills.
        self._reader = threading.Thread(target=self._read_output, args=(self._proc,), daemon=True)
        self._reader.start()
        while time.monotonic() < deadline:
            if self._ready.wait(0.05):
                return True
            if self._proc.poll() is not None:
                self._reader.join(timeout=2)
                return self._ready.is_set()
        return False

    def _read_output(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._lines.append(line)
            if READY_LINE in line:
                self._ready.set()
        proc.stdout.close()

    def stop(self, timeout: float = 10) -> None:
        """Kill the emulator's whole process group and reap it. Safe to call twice."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout / 2), (signal.SIGKILL, timeout / 2)):
            try:
                os.killpg(proc.pid, sig)  # pgid == pid thanks to start_new_session
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; make sure nothing else in its group survives.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        if proc.poll() is None:
            proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None

    def __enter__(self) -> PubSubEmulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PubSubEmulator {self.launcher} {state} port={self.port}>"
