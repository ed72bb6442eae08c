"""One supervisor per role, and none beside the strays of a dead one.

``RoleLocks``: an flock per role (web, worker, daemon) in the state directory,
held for the supervisor's life. The kernel drops an flock when its process dies,
however it died, so the file a killed supervisor leaves behind is never taken for
a live one (a pid file would be, once the pid is reused). Per role because the
systemd units run ``--only web``, ``--only worker`` and ``--only daemon`` side
by side.

``find_strays``: this project's gunicorn, worker and daemon processes that no
supervisor owns any more (their parent died and init adopted them), found in
/proc. Ours: their environment names our state directory (``MARK``, set by
run_services.py for its children), or, for processes started before that mark
existed, their working directory is the project's.
"""

import fcntl
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

MARK = "RUN_SERVICES_DIR"
SUPERVISOR = "run_services.py"


class RoleLocks:
    def __init__(self, directory, roles):
        self.paths = {role: Path(directory) / f"run_services.{role}.lock" for role in roles}
        self.handles = []

    def acquire(self, holder):
        """Take every lock or none. Returns {holder: [roles]} for the locks that
        others hold (empty when all were taken); ``holder`` is written in ours."""
        busy = {}
        for role, path in self.paths.items():
            handle = open(path, "a+")  # noqa: SIM115 - kept open while the lock is held
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                busy.setdefault(handle.read().strip() or "a process", []).append(role)
                handle.close()
                continue
            handle.truncate(0)
            handle.write(holder + "\n")
            handle.flush()
            self.handles.append(handle)
        if busy:
            self.release()
        return busy

    def release(self):
        for handle in self.handles:
            handle.close()
        self.handles = []


def describe_self():
    return f"pid {os.getpid()}: {sys.executable} {' '.join(sys.argv)}"


def busy_message(busy):
    lines = ["run_services: refusing to start: another run_services.py supervises these roles here:"]
    lines += [f"  {', '.join(roles)}: {holder}" for holder, roles in busy.items()]
    pids = " ".join(match[1] for match in map(re.compile(r"pid (\d+)").match, busy) if match)
    lines.append(f"Stop it first (kill -TERM {pids}), or run only the other roles with --only.")
    return "\n".join(lines)


@dataclass(frozen=True)
class Stray:
    pid: int
    role: str
    command: str


def find_strays(roles, directory, root, proc=Path("/proc")):
    """The processes of ``roles`` left running by a dead supervisor of this
    project (state ``directory``, checkout ``root``); none where there is no /proc."""
    if not proc.is_dir():
        return []
    strays = []
    for entry in proc.iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                stray = _stray(entry, roles, str(directory), str(root))
            except OSError:  # gone meanwhile, or another user's
                continue
            if stray:
                strays.append(stray)
    return sorted(strays, key=lambda s: s.pid)


def strays_message(strays):
    lines = ["run_services: refusing to start: processes of a run_services.py that died are still running:"]
    lines += [f"  pid {s.pid} ({s.role}): {s.command}" for s in strays]
    lines.append(
        "If their supervisor was killed just now they are already stopping (Linux): start again in a few seconds."
    )
    lines.append(
        f"Else stop them: kill -TERM {' '.join(str(s.pid) for s in strays)} (a graceful stop takes up to "
        "WORKER_SHUTDOWN_GRACE_SECONDS for a worker, GUNICORN_GRACEFUL_TIMEOUT for the web; "
        "kill -KILL what is left after that)."
    )
    return "\n".join(lines)


def _stray(entry, roles, directory, root):
    argv = (entry / "cmdline").read_bytes().split(b"\0")
    role = _role(argv, roles)
    if role is None or not _ours(entry, directory, root):
        return None
    state, ppid = _state_and_parent(entry)
    if state == "Z" or not _orphan(entry.parent, ppid):
        return None
    return Stray(int(entry.name), role, _command(b"\0".join(argv)))


def _role(argv, roles):
    names = [os.path.basename(arg.decode(errors="replace")) for arg in argv]
    if "web" in roles and any(name == "gunicorn" or name.startswith("gunicorn:") for name in names):
        return "web"
    if "worker" in roles and "process_llm_jobs" in names:
        return "worker"
    if "daemon" in roles and ("run_sync_daemon.py" in names or "run_daemon" in names):
        return "daemon"
    return None


def _ours(entry, directory, root):
    environ = (entry / "environ").read_bytes().split(b"\0")
    prefix = f"{MARK}=".encode()
    marks = [item[len(prefix) :].decode(errors="replace") for item in environ if item.startswith(prefix)]
    if marks:
        return marks[0] == directory
    return os.readlink(entry / "cwd") == root


def _state_and_parent(entry):
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    fields = (entry / "stat").read_text().rpartition(")")[2].split()
    return fields[0], int(fields[1])


def _orphan(proc, ppid):
    """Adopted: by init, or by a subreaper such as a user's systemd; never
    a child of a live supervisor (which may itself be PID 1 in a container)."""
    try:
        parent_command = (proc / str(ppid) / "cmdline").read_bytes()
        parent_name = (proc / str(ppid) / "comm").read_text().strip()
    except OSError:
        return ppid <= 1
    if SUPERVISOR.encode() in parent_command:
        return False
    return ppid <= 1 or parent_name == "systemd"


def _command(raw):
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
