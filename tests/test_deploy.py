"""deploy.sh (--local from a fresh clone, the ssh path by --dry-run and with a
fake ssh that fails), the systemd units (systemd-analyze verify) and the
documented production environment (deploy/eval.env.example).

The fresh-clone test installs requirements into a new venv (about a minute
from a warm pip cache); SKIP_DEPLOY_LOCAL_TEST=1 skips it, and nothing else does.
"""

import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import check_deploy, free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy.sh"
UNITS = ["eval.service", "eval@.service", "eval-metrics.service"]
ENV_EXAMPLE = ROOT / "deploy" / "eval.env.example"

# DESIGN.md, "Settings": every one must be documented in the env example.
DESIGN_SETTINGS = [
    # DESIGN "Alerts"
    "ALERT_NO_WORKER_SECONDS",
    "ALERT_QUEUE_AGE_SECONDS",
    "ALERT_WINDOW_SECONDS",
    "ALERT_FAILURE_RATE",
    "ALERT_MIN_FAILURES",
    "ALERT_REPEAT_SECONDS",
    "ALERT_EMAILS",
    "ALERT_WEBHOOK_URL",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "DEFAULT_FROM_EMAIL",
    # DESIGN "Settings"
    "DATABASE_URL",
    "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    "DJANGO_SECURE_SSL_REDIRECT",
    "JOB_TRANSPORT",
    "PUBSUB_PROJECT_ID",
    "PUBSUB_TOPIC",
    "PUBSUB_SUBSCRIPTION",
    "PUBSUB_DEAD_LETTER_TOPIC",
    "PUBSUB_MAX_DELIVERY_ATTEMPTS",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODELS",
    "GEMINI_API_KEY",
    "GEMINI_BASE_URL",
    "GEMINI_MODELS",
    "ECHO_CHUNK_DELAY_MS",
    "TASK_SOURCE",
    "TASK_SOURCE_NAME",
    "WORKER_CONCURRENCY",
    "WORKER_PROCESSES",
    "WORKER_SHUTDOWN_GRACE_SECONDS",
    "JOB_LEASE_SECONDS",
    "JOB_MAX_ATTEMPTS",
    "JOB_TIMEOUT_SECONDS",
    "JOB_RETRY_MAX_DELAY_SECONDS",
    "SYNC_INTERVAL_SECONDS",
    "POLL_INTERVAL_MS",
    "POLL_OUTPUT_CHARS",
    "MAX_PROMPT_CHARS",
    "API_MAX_BODY_BYTES",
    "JOB_CREATE_RATE",
    "MAX_QUEUED_JOBS_PER_USER",
    "METRICS_TOKEN",
    "LOG_FORMAT",
    "GUNICORN_BIND",
]


def deploy(*args, env=None, cwd=ROOT, timeout=120):
    return subprocess.run(
        ["bash", str(DEPLOY), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def fake_ssh(tmp_path):
    """An `ssh` first on PATH that records its calls (and swallows stdin);
    it fails when the remote command contains $FAKE_SSH_FAIL_ON."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "ssh-calls"
    script = bin_dir / "ssh"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> "{log}"\n'
        "cat > /dev/null\n"
        'case "$*" in *"${FAKE_SSH_FAIL_ON:-@@never@@}"*) echo "remote step failed" >&2; exit 3;; esac\n'
        "exit 0\n"
    )
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, log


def git_head():
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    return subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()


# --- the ssh path, printed -----------------------------------------------------------------


def commands(output):
    return [line[2:] for line in output.splitlines() if line.startswith("+ ")]


def test_host_dry_run_prints_every_step_and_runs_nothing(fake_ssh):
    env, ssh_log = fake_ssh
    sha = git_head()
    result = deploy("--host", "ops@vm-1", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert not ssh_log.exists(), "dry run must not call ssh"
    cmds = commands(result.stdout)
    release = re.search(r"/opt/eval/releases/(\d{14}-" + sha + ")", result.stdout)
    assert release, result.stdout
    rel = f"/opt/eval/releases/{release.group(1)}"
    assert all(c.startswith(("ssh ", "git archive")) for c in cmds), cmds
    assert all(" ops@vm-1 " in c for c in cmds)

    def index(fragment):
        found = [i for i, c in enumerate(cmds) if fragment in c]
        assert found, f"no command with {fragment!r} in:\n" + "\n".join(cmds)
        return found[0]

    upload = index("git archive --format=tar HEAD | ssh")
    assert f"tar -x -C {rel}" in cmds[upload]
    venv = index(f"cd {rel} && sudo -u eval python3 -m venv .venv")
    assert "pip install --quiet --disable-pip-version-check -r requirements.txt" in cmds[venv]
    check = index("manage.py check --deploy")
    migrate = index("manage.py migrate --noinput")
    assert ". /etc/eval/eval.env" in cmds[migrate] and f"cd {rel}" in cmds[migrate]
    static = index("manage.py collectstatic --noinput")
    units = index("systemctl daemon-reload")
    assert f"install -m 0644 {rel}/deploy/eval.service" in cmds[units]
    sysctl = index("sysctl -q -e -p /etc/sysctl.d/60-eval.conf")
    assert f"install -m 0644 {rel}/deploy/eval-sysctl.conf /etc/sysctl.d/60-eval.conf" in cmds[sysctl]
    switch = index("mv -T /opt/eval/current.new /opt/eval/current")
    assert f"ln -sfn {rel} /opt/eval/current.new" in cmds[switch]
    assert "mv -T /opt/eval/previous.new /opt/eval/previous" in cmds[switch]
    restart = index("systemctl restart eval.service")
    probe = index("curl -fsS")
    assert "http://127.0.0.1:8000/readyz" in cmds[probe]
    prune = index("rm -rf --")
    # collectstatic comes before the checks (with DEBUG off they need its manifest);
    # migrations run before the switch (the old release keeps serving), the
    # restart after it, the probe after the restart, old releases pruned last.
    assert upload < venv < static < check < migrate < units <= sysctl < switch < restart < probe < prune


def test_rollback_dry_run_switches_back_restarts_and_probes(fake_ssh):
    env, ssh_log = fake_ssh
    result = deploy(
        "--host", "vm-2", "--rollback", "--dry-run", "--units", "eval@web.service eval@worker.service", env=env
    )
    assert result.returncode == 0, result.stderr
    assert not ssh_log.exists()
    cmds = commands(result.stdout)
    assert len(cmds) == 4, cmds
    switch, units, restart, probe = cmds
    assert "prev=$(readlink /opt/eval/previous)" in switch
    assert 'ln -sfn "$prev" /opt/eval/current.new && mv -T /opt/eval/current.new /opt/eval/current' in switch
    assert 'ln -sfn "$cur" /opt/eval/previous.new' in switch
    assert "no previous release" in switch
    assert "/opt/eval/current/deploy/eval.service" in units and "daemon-reload" in units
    assert "systemctl restart eval@web.service eval@worker.service" in restart
    assert "/readyz" in probe


def test_probe_can_be_skipped_for_worker_only_hosts(fake_ssh):
    env, _ = fake_ssh
    git_head()
    result = deploy("--host", "w1", "--dry-run", "--units", "eval@worker.service", "--probe-url", "none", env=env)
    assert result.returncode == 0, result.stderr
    assert "curl" not in result.stdout
    assert "systemctl is-active eval@worker.service" in result.stdout


def test_a_failing_remote_step_stops_the_deploy(fake_ssh):
    """Real mode against a fake ssh: the migrate step fails, nothing after it runs."""
    env, ssh_log = fake_ssh
    git_head()
    result = deploy("--host", "vm-3", env={**env, "FAKE_SSH_FAIL_ON": "manage.py migrate"})
    assert result.returncode != 0
    assert "FAILED at step 'migrate" in result.stderr
    calls = ssh_log.read_text()
    assert "manage.py collectstatic" in calls and "manage.py check --deploy" in calls
    assert "manage.py migrate" in calls
    assert "systemctl daemon-reload" not in calls and "systemctl restart" not in calls and "current.new" not in calls


def test_usage_errors():
    assert deploy().returncode == 2
    assert deploy("--bogus").returncode == 2
    result = deploy("--host", "-oProxyCommand=touch /tmp/x", "--dry-run")
    assert result.returncode == 1 and "ssh destination" in result.stderr
    assert deploy("--host", "vm", "--units", "eval.service; reboot", "--dry-run").returncode == 1
    assert deploy("--local", "--rollback").returncode == 1
    assert "--rollback" in deploy("--help").stdout


def test_script_never_kills_by_name():
    text = DEPLOY.read_text()
    assert "set -Eeuo pipefail" in text
    for pattern in ("pkill", "killall", "kill -9", "pgrep"):
        assert pattern not in text


def test_no_machine_specific_paths_in_deploy_files():
    for path in [DEPLOY, ENV_EXAMPLE, ROOT / "deploy" / "README-ops.md", *[ROOT / "deploy" / u for u in UNITS]]:
        text = path.read_text()
        assert "/work/" not in text and "/home/" not in text and "/root/" not in text, path


# --- systemd units ---------------------------------------------------------------------------


def unit_settings(name):
    values = {}
    for line in (ROOT / "deploy" / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def env_example():
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?([A-Z][A-Z0-9_]+)=(.*)$", line)
        if match:
            values.setdefault(match.group(1), (match.group(2), line.startswith("#")))
    return values


@pytest.mark.parametrize("name", ["eval.service", "eval@.service"])
def test_service_units_kill_the_whole_group_after_the_worker_grace(name):
    unit = unit_settings(name)
    assert unit["KillMode"] == ["control-group"]
    assert unit["EnvironmentFile"] == ["/etc/eval/eval.env"]
    assert unit["Restart"] == ["always"]
    assert unit["User"] == ["eval"]
    assert "run_services.py" in unit["ExecStart"][0]
    grace = float(env_example()["WORKER_SHUTDOWN_GRACE_SECONDS"][0])
    # run_services.py kills stragglers at grace + 5 s; systemd must wait longer.
    assert float(unit["TimeoutStopSec"][0]) > grace + 5


def test_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    # The units name /opt/eval/current/.venv/bin/python and /etc/eval/eval.env,
    # which verify checks: point them at a stand-in tree.
    fake_root = tmp_path / "root"
    python = fake_root / "opt/eval/current/.venv/bin/python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    (fake_root / "etc/eval").mkdir(parents=True)
    (fake_root / "etc/eval/eval.env").write_text("")
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    for name in UNITS:
        text = (ROOT / "deploy" / name).read_text()
        text = text.replace("/opt/eval", f"{fake_root}/opt/eval").replace("/etc/eval", f"{fake_root}/etc/eval")
        (unit_dir / name).write_text(text)
    targets = [unit_dir / "eval.service", unit_dir / "eval@web.service", unit_dir / "eval-metrics.service"]
    result = subprocess.run(
        [analyze, "verify", "--man=no", *map(str, targets)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys are only warnings: none allowed


# --- the documented environment ------------------------------------------------------------


def test_env_example_documents_every_setting():
    documented = env_example()
    settings_py = (ROOT / "coreproject" / "settings.py").read_text()
    in_settings = set(re.findall(r'env\.\w+\("([A-Z0-9_]+)"', settings_py))
    missing = sorted((set(DESIGN_SETTINGS) | in_settings) - set(documented))
    assert not missing, f"not in deploy/eval.env.example: {missing}"
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"^#?([A-Z][A-Z0-9_]+)=", line)
        if match and match.group(1) in DESIGN_SETTINGS:
            # A comment explains it: on the line above, or above a group of related lines.
            above = lines[max(0, index - 6) : index]
            assert any(a.startswith("# ") for a in above), f"{match.group(1)} has no comment"
    for secret in ("DJANGO_SECRET_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "METRICS_TOKEN"):
        assert documented[secret][0] == "CHANGE_ME", secret


def test_env_example_passes_check_deploy(tmp_path):
    """`manage.py check --deploy` with the documented environment reports nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "PROMETHEUS_"))}
    for key, (value, commented) in env_example().items():
        if not commented:
            env[key] = value
    env.update(
        DJANGO_SECRET_KEY="x" * 10 + "-Secret-Key-For-The-Check-0123456789-abcdefghijkl",
        DJANGO_LOCAL_DIR=str(tmp_path / "local"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"),
        ANTHROPIC_API_KEY="sk-test",
        GEMINI_API_KEY="g-test",
        METRICS_TOKEN="m-test",
        PUBSUB_PROJECT_ID="demo-project",
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
    )
    # As deploy.sh does: collectstatic first (with DEBUG off the checks need its manifest).
    collect = [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"]
    subprocess.run(collect, cwd=ROOT, env=env, check=True, timeout=300)
    result = check_deploy(env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


# --- deploy.sh --local from a fresh clone ---------------------------------------------------

# Files of this feature copied over the clone, so the test covers the working
# tree before it is committed (the clone holds only committed files).
OVERLAY = [
    "deploy.sh",
    "deploy",
    "eval/metrics",
    "eval/health.py",
    "coreproject/urls.py",
    "coreproject/logformat.py",
    "run_services.py",
]


@pytest.mark.timeout(900)
def test_local_from_a_fresh_clone(tmp_path):
    if os.environ.get("SKIP_DEPLOY_LOCAL_TEST", "").lower() in {"1", "true", "yes"}:
        pytest.skip("SKIP_DEPLOY_LOCAL_TEST=1")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("deploy.sh --local needs a git checkout to clone (git missing or not a checkout)")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    for name in OVERLAY:
        source, target = ROOT / name, clone / name
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy2(source, target)
    database = tmp_path / "deploy.sqlite3"
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "PROMETHEUS_", "VIRTUAL_ENV"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{database}",
        PYTHON=shutil.which("python3") or sys.executable,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="2",
        WORKER_SHUTDOWN_GRACE_SECONDS="2",
        SYNC_INTERVAL_SECONDS="5",
    )

    def run(*args, timeout=600):
        return subprocess.run(
            ["bash", str(clone / "deploy.sh"), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    first = run("--local")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "GET /readyz -> 200" in first.stdout
    assert "Created the login 'admin'" in first.stdout
    assert (clone / ".venv" / "bin" / "python").exists()
    assert (clone / "staticfiles").is_dir()
    password_file = clone / ".local" / "admin-password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600

    python = str(clone / ".venv" / "bin" / "python")
    for args in (["check"], ["migrate", "--check"]):
        result = subprocess.run([python, "manage.py", *args], cwd=clone, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(database) as db:
        assert db.execute("select is_superuser from auth_user where username = 'admin'").fetchone() == (1,)
        assert db.execute("select count(*) from eval_task").fetchone()[0] > 0

    # Idempotent: again, nothing reinstalled, no second admin, same password.
    second = run("--local")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "already installed" in second.stdout
    assert "Created the login" not in second.stdout
    assert "GET /readyz -> 200" in second.stdout

    # --start runs the services in the background and probes /readyz over
    # HTTP; --stop stops exactly that process (our pid file).
    started = run("--local", "--start")
    try:
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        assert '{"status": "ok"}' in started.stdout
        pid = int((clone / ".local" / "run_services.pid").read_text())
        again = run("--local", "--start")
        assert f"already running (pid {pid})" in again.stdout
    finally:
        stopped = run("--local", "--stop", timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"stopped run_services.py (pid {pid})" in stopped.stdout
    assert not (clone / ".local" / "run_services.pid").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
