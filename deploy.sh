#!/usr/bin/env bash
# Set up or deploy the eval console. See deploy/README-ops.md.
#
#   ./deploy.sh --local [--start | --stop]   development set-up on this machine
#   ./deploy.sh --host HOST                  deploy the current commit over ssh
#   ./deploy.sh --host HOST --rollback       back to the previous release
#   add --dry-run to print every command instead of running it
#
# --local: .venv, pip install -r requirements.txt, manage.py check, migrate,
#   collectstatic, bootstrap (demo tasks into an empty database, the 'admin'
#   login), then a readiness probe (migrations applied, GET /readyz answered
#   in-process). Starts nothing unless --start, which runs run_services.py in
#   the background (pid file .local/run_services.pid, log
#   .local/run_services.log) and probes /readyz over HTTP; --stop stops it.
#
# --host HOST (any ssh destination: host, user@host, an ssh_config alias):
#   the commit at HEAD (git archive: committed files only) goes to a new
#   release directory /opt/eval/releases/<UTC time>-<sha>; there: a venv,
#   pip install, collectstatic, manage.py check --deploy, migrate; the systemd
#   units are installed; the `current` symlink is switched atomically (the old
#   target becomes `previous`), the units restarted, and /readyz probed.
#   Migrations run while the old release still serves and works: they must be
#   backward compatible (add, never drop or rename, in the same release; see
#   deploy/README-ops.md, "Migrations").
#   --rollback points `current` back at `previous`, and restarts and probes.
#
# Options for --host:
#   --units "U ..."     units to (re)start (default: eval.service; scaled out,
#                       e.g. "eval@web.service" or "eval@worker.service eval-metrics.service")
#   --probe-url URL     checked on the host after the restart
#                       (default http://127.0.0.1:8000/readyz; "none" to skip,
#                       e.g. on a worker-only VM)
#   --keep N            releases kept besides current and previous (default 5)
#   --ssh-option OPT    passed to ssh as -o OPT (repeatable)
# Environment: EVAL_ROOT (default /opt/eval), EVAL_ENV_FILE (default
# /etc/eval/eval.env), EVAL_USER (default eval), PYTHON (local: python3;
# remote: python3), DEPLOY_SUDO (default sudo; empty when the ssh user is root).
#
# Idempotent: --local can be run again at will; each --host deploy is a new
# release and leaves the others alone. Stops at the first error, naming the
# step. Never kills processes by name: systemctl on hosts, our own pid file
# locally.
set -Eeuo pipefail  # -E: the ERR trap (names the failed step) fires inside functions too

usage() {
    sed -n '2,/^set -Eeuo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

MODE=""
HOST=""
DRY_RUN=0
ROLLBACK=0
START=0
STOP=0
UNITS="eval.service"
PROBE_URL="http://127.0.0.1:8000/readyz"
KEEP=5
SSH_OPTS=(-o BatchMode=yes -o ConnectTimeout=15)

die() {
    echo "deploy.sh: error: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --local) MODE=local ;;
        --host)
            [ $# -ge 2 ] || die "--host needs a value"
            MODE=host
            HOST=$2
            shift
            ;;
        --host=*) MODE=host HOST=${1#--host=} ;;
        --rollback) ROLLBACK=1 ;;
        --dry-run) DRY_RUN=1 ;;
        --start) START=1 ;;
        --stop) STOP=1 ;;
        --units)
            [ $# -ge 2 ] || die "--units needs a value"
            UNITS=$2
            shift
            ;;
        --probe-url)
            [ $# -ge 2 ] || die "--probe-url needs a value"
            PROBE_URL=$2
            shift
            ;;
        --keep)
            [ $# -ge 2 ] || die "--keep needs a value"
            KEEP=$2
            shift
            ;;
        --ssh-option)
            [ $# -ge 2 ] || die "--ssh-option needs a value"
            SSH_OPTS+=(-o "$2")
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "deploy.sh: unknown argument: $1 (see --help)" >&2
            exit 2
            ;;
    esac
    shift
done

if [ -z "$MODE" ]; then
    echo "deploy.sh: say --local or --host HOST (see --help)" >&2
    exit 2
fi
if [ "$MODE" = host ]; then
    case "$HOST" in
        "" | -*) die "--host needs an ssh destination (got '$HOST')" ;;
    esac
    [ "$START" = 0 ] && [ "$STOP" = 0 ] || die "--start/--stop go with --local; hosts use systemctl"
    case "$KEEP" in
        '' | *[!0-9]*) die "--keep needs a number" ;;
    esac
    for unit in $UNITS; do
        case "$unit" in
            *[!A-Za-z0-9@._-]*) die "bad unit name: $unit" ;;
        esac
    done
else
    [ "$ROLLBACK" = 0 ] || die "--rollback goes with --host (locally there is one working tree)"
    [ "$START" = 0 ] || [ "$STOP" = 0 ] || die "--start and --stop together make no sense"
fi

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STEP="start"

on_error() {
    local code=$?
    echo "deploy.sh: FAILED at step '$STEP' (exit $code). Nothing after it was run." >&2
    if [ "$MODE" = host ] && [ "$STEP" = "health probe" ]; then
        echo "deploy.sh: the new release is live but not ready: look at 'journalctl -u ${UNITS%% *} -n 200' on $HOST," >&2
        echo "deploy.sh: or go back with: $0 --host $HOST --rollback" >&2
    fi
    exit "$code"
}
trap on_error ERR

step() {
    STEP=$1
    echo "==> $1"
}

# Quote one word for a shell, only when it needs it (readable dry-run output).
quote() {
    case "$1" in
        '' | *[!A-Za-z0-9_./:=@%+,-]*) printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
        *) printf '%s' "$1" ;;
    esac
}

show() {
    local out="+" word
    for word in "$@"; do
        out+=" $(quote "$word")"
    done
    printf '%s\n' "$out"
}

# Run a command, or print it under --dry-run.
run() {
    if [ "$DRY_RUN" = 1 ]; then
        show "$@"
    else
        "$@"
    fi
}

# ============================================================================
# --local
# ============================================================================
PIDFILE="$ROOT_DIR/.local/run_services.pid"

our_pid() {
    # The pid in our pid file, if that process is alive and is our run_services.py.
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid=$(cat "$PIDFILE")
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "run_services.py" || return 1
    echo "$pid"
}

local_stop() {
    step "stop"
    local pid
    if ! pid=$(our_pid); then
        echo "not running (no live process in $PIDFILE)"
        run rm -f "$PIDFILE"
        return 0
    fi
    run kill -TERM "$pid"
    [ "$DRY_RUN" = 1 ] && return 0
    local grace=${WORKER_SHUTDOWN_GRACE_SECONDS:-10}
    local waited=0 limit=$(((${grace%.*} + 15) * 10))
    while kill -0 "$pid" 2>/dev/null; do
        [ "$waited" -lt "$limit" ] || die "run_services.py (pid $pid) did not stop within $((limit / 10)) s"
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$PIDFILE"
    echo "stopped run_services.py (pid $pid)"
}

local_setup() {
    cd "$ROOT_DIR"
    export DJANGO_DEBUG=${DJANGO_DEBUG:-1}
    local py=${PYTHON:-python3}
    local venv="$ROOT_DIR/.venv"

    step "python"
    command -v "$py" >/dev/null 2>&1 || die "$py not found: install Python 3.11+ (or set PYTHON=...)"
    "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' ||
        die "Python 3.11+ is needed; $py is $("$py" -c 'import sys; print(sys.version.split()[0])')"

    step "virtualenv"
    if [ ! -x "$venv/bin/python" ]; then
        run "$py" -m venv "$venv" ||
            die "could not create $venv: install python3-venv (Debian/Ubuntu: apt-get install python3-venv)"
    else
        echo "$venv exists"
    fi

    step "pip install"
    if [ -f "$venv/.installed" ] && [ "$venv/.installed" -nt requirements.txt ]; then
        echo "requirements already installed (delete $venv/.installed to force)"
    else
        run "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
        run touch "$venv/.installed"
    fi

    local manage=("$venv/bin/python" manage.py)
    step "check"
    run "${manage[@]}" check
    step "migrate"
    run "${manage[@]}" migrate --noinput
    step "collectstatic"
    run "${manage[@]}" collectstatic --noinput --verbosity 0
    step "bootstrap"
    run "${manage[@]}" bootstrap

    step "readiness probe"
    run "${manage[@]}" migrate --check
    run "$venv/bin/python" -c '
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coreproject.settings")
import django
django.setup()
from django.test import Client
response = Client().get("/readyz", HTTP_HOST="localhost")
print("GET /readyz ->", response.status_code, response.content.decode())
sys.exit(0 if response.status_code == 200 else 1)
'
}

local_start() {
    step "start"
    local pid
    if pid=$(our_pid); then
        echo "run_services.py already running (pid $pid); stop it with: $0 --local --stop"
    else
        mkdir -p "$ROOT_DIR/.local"
        if [ "$DRY_RUN" = 1 ]; then
            show "$ROOT_DIR/.venv/bin/python" run_services.py ">>" .local/run_services.log "&"
        else
            # setsid: its own session, so Ctrl-C in this terminal does not reach it.
            setsid "$ROOT_DIR/.venv/bin/python" run_services.py >>"$ROOT_DIR/.local/run_services.log" 2>&1 </dev/null &
            echo $! >"$PIDFILE"
            echo "started run_services.py (pid $!), log in .local/run_services.log"
        fi
    fi
    step "health probe"
    local url="http://${GUNICORN_BIND:-127.0.0.1:8000}/readyz"
    run curl -fsS --max-time 5 --retry 30 --retry-delay 1 --retry-connrefused --retry-all-errors "$url"
    echo
    echo "ready: http://${GUNICORN_BIND:-127.0.0.1:8000}/  (stop with: $0 --local --stop)"
}

# ============================================================================
# --host
# ============================================================================
EVAL_ROOT=${EVAL_ROOT:-/opt/eval}
EVAL_ENV_FILE=${EVAL_ENV_FILE:-/etc/eval/eval.env}
EVAL_USER=${EVAL_USER:-eval}
REMOTE_PYTHON=${PYTHON:-python3}
SUDO=${DEPLOY_SUDO-sudo}
AS_APP="${SUDO:+$SUDO }-u $EVAL_USER"
[ -n "$SUDO" ] || AS_APP="runuser -u $EVAL_USER --"

# Run one shell command line on the host.
remote() {
    run ssh "${SSH_OPTS[@]}" "$HOST" "$1"
}

# A command line run on the host as the app user, in directory $1, with the
# production environment loaded.
app_cmd() {
    printf '%s' "$AS_APP sh -c 'set -a && . $EVAL_ENV_FILE && set +a && cd $1 && $2'"
}

root_cmd() {
    printf '%s' "${SUDO:+$SUDO }$1"
}

host_restart_and_probe() {
    step "restart"
    # shellcheck disable=SC2086  # UNITS is a checked, space-separated list
    remote "$(root_cmd "systemctl enable --quiet $UNITS") && $(root_cmd "systemctl restart $UNITS") && $(root_cmd "systemctl is-active $UNITS")"
    if [ "$PROBE_URL" != none ]; then
        step "health probe"
        remote "curl -fsS --max-time 5 --retry 30 --retry-delay 2 --retry-connrefused --retry-all-errors $PROBE_URL"
        echo
    fi
}

host_deploy() {
    cd "$ROOT_DIR"
    step "revision"
    git rev-parse --verify --quiet HEAD >/dev/null || die "no commit to deploy (git HEAD is missing)"
    local sha release rel
    sha=$(git rev-parse --short=12 HEAD)
    release="$(date -u +%Y%m%d%H%M%S)-$sha"
    rel="$EVAL_ROOT/releases/$release"
    if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
        echo "warning: uncommitted changes are NOT deployed (only commit $sha is)" >&2
    fi
    echo "deploying $sha to $HOST:$rel"

    step "host preflight"
    remote "command -v $REMOTE_PYTHON >/dev/null || { echo 'no $REMOTE_PYTHON on the host' >&2; exit 1; }; $REMOTE_PYTHON -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' || { echo 'the host needs Python 3.11+ with venv (apt-get install python3-venv)' >&2; exit 1; }; id -u $EVAL_USER >/dev/null 2>&1 || $(root_cmd "useradd --system --home-dir $EVAL_ROOT --shell /usr/sbin/nologin $EVAL_USER"); $(root_cmd "install -d -o $EVAL_USER -g $EVAL_USER -m 0755 $EVAL_ROOT $EVAL_ROOT/releases $EVAL_ROOT/shared $EVAL_ROOT/shared/local"); $(root_cmd "test -f $EVAL_ENV_FILE") || { echo 'missing $EVAL_ENV_FILE: install deploy/eval.env.example there (root:$EVAL_USER, mode 0640) and fill it in' >&2; exit 1; }"

    step "upload"
    local receive
    receive="$AS_APP mkdir $rel && $AS_APP tar -x -C $rel && echo $sha | $AS_APP tee $rel/REVISION >/dev/null"
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ git archive --format=tar HEAD | %s\n' "$(show ssh "${SSH_OPTS[@]}" "$HOST" "$receive" | cut -c3-)"
    else
        git archive --format=tar HEAD | ssh "${SSH_OPTS[@]}" "$HOST" "$receive"
    fi

    step "virtualenv and requirements"
    remote "cd $rel && $AS_APP $REMOTE_PYTHON -m venv .venv && $AS_APP .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt && $AS_APP .venv/bin/python -m compileall -q coreproject eval"

    step "collectstatic (before the checks: with DEBUG off they need its manifest)"
    remote "$(app_cmd "$rel" ".venv/bin/python manage.py collectstatic --noinput --verbosity 0")"
    step "check --deploy"
    remote "$(app_cmd "$rel" ".venv/bin/python manage.py check --deploy")"
    step "migrate (backward compatible: the old release keeps running)"
    remote "$(app_cmd "$rel" ".venv/bin/python manage.py migrate --noinput")"

    step "systemd units and kernel settings"
    remote "$(root_cmd "install -m 0644 $rel/deploy/eval.service $rel/deploy/eval@.service $rel/deploy/eval-metrics.service /etc/systemd/system/") && $(root_cmd "systemctl daemon-reload") && $(root_cmd "install -m 0644 $rel/deploy/eval-sysctl.conf /etc/sysctl.d/60-eval.conf") && $(root_cmd "sysctl -q -e -p /etc/sysctl.d/60-eval.conf")"

    step "switch current -> $release"
    # `previous` := the old target; `current` := the new release; each by a
    # rename of a fresh symlink over the old one (atomic: never missing).
    remote "$AS_APP sh -c 'old=\$(readlink $EVAL_ROOT/current || true); if [ -n \"\$old\" ] && [ \"\$old\" != $rel ]; then ln -sfn \"\$old\" $EVAL_ROOT/previous.new && mv -T $EVAL_ROOT/previous.new $EVAL_ROOT/previous; fi; ln -sfn $rel $EVAL_ROOT/current.new && mv -T $EVAL_ROOT/current.new $EVAL_ROOT/current'"

    host_restart_and_probe

    step "prune old releases (keep $KEEP besides current and previous)"
    remote "$AS_APP sh -c 'cd $EVAL_ROOT/releases && cur=\$(basename \"\$(readlink -f $EVAL_ROOT/current)\") && prev=\$(basename \"\$(readlink -f $EVAL_ROOT/previous 2>/dev/null || echo none)\") && ls -1 | sort -r | grep -v -x -e \"\$cur\" -e \"\$prev\" | tail -n +$((KEEP + 1)) | while read -r old; do rm -rf -- \"\$old\"; done'"

    STEP="done"
    echo "deployed $sha to $HOST ($rel)"
}

host_rollback() {
    step "rollback: switch current -> previous"
    remote "$AS_APP sh -c 'prev=\$(readlink $EVAL_ROOT/previous) && cur=\$(readlink $EVAL_ROOT/current) && test -d \"\$prev\" || { echo \"no previous release to roll back to\" >&2; exit 1; }; ln -sfn \"\$prev\" $EVAL_ROOT/current.new && mv -T $EVAL_ROOT/current.new $EVAL_ROOT/current && ln -sfn \"\$cur\" $EVAL_ROOT/previous.new && mv -T $EVAL_ROOT/previous.new $EVAL_ROOT/previous && echo \"current -> \$prev (previous -> \$cur)\"'"
    step "systemd units of that release"
    remote "$(root_cmd "install -m 0644 $EVAL_ROOT/current/deploy/eval.service $EVAL_ROOT/current/deploy/eval@.service $EVAL_ROOT/current/deploy/eval-metrics.service /etc/systemd/system/") && $(root_cmd "systemctl daemon-reload")"
    host_restart_and_probe
    STEP="done"
    echo "rolled back on $HOST (migrations are not reversed: they were backward compatible)"
}

case "$MODE" in
    local)
        if [ "$STOP" = 1 ]; then
            local_stop
        else
            local_setup
            [ "$START" = 0 ] || local_start
        fi
        ;;
    host)
        if [ "$ROLLBACK" = 1 ]; then
            host_rollback
        else
            host_deploy
        fi
        ;;
esac
