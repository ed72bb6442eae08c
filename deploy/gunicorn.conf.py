"""gunicorn settings (run_services.py and the systemd unit use this file).

gthread workers, one per CPU, two threads each: a poll is short and waits on
the database about a third of its time. More threads per process only queue
on the GIL: bench/poll.py at 64 connections on 2 cores had the best tail
latency at 2 x 2 (3 x 4 and 2 x 4 were within noise on throughput but had
longer tails).

Each worker listens on a socket of its own (SO_REUSEPORT, Linux) and the kernel
hashes new connections evenly over them. On one shared socket the worker that
woke first took most of a burst: 50 of wrk's 64 kept-alive connections, whose
requests then waited twice as long (poll p99 94-100 ms against 56 ms when the
split was even). coreproject/gunicorn_worker.py keeps a stopping worker from
stranding connections on its socket."""

import multiprocessing
import os
import sys

from gunicorn.arbiter import Arbiter

from coreproject import gunicorn_errors

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "coreproject.gunicorn_worker.ThreadWorker"
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS", 2))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 10))
keepalive = 5
# gunicorn's largest: every URL the API allows fits (100 job ids percent-encoded,
# a 500-character search in 4-byte characters). Beyond it, 414 in JSON.
limit_request_line = 8190
gunicorn_errors.install(limit_request_line)
# One worker has nothing to balance, and while it restarts a shared socket,
# held by the master, queues new connections where its own would refuse them.
# Elsewhere (macOS, BSD) SO_REUSEPORT does not spread connections.
spread = sys.platform == "linux" and workers > 1
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "1" if spread else "0") == "1"
# A recycled worker costs a Django start-up and its clients a reconnect: rarely.
# The wide jitter keeps workers from recycling together: with a socket each,
# connections are refused for the moment that none listens.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 100_000))
max_requests_jitter = max_requests // 2
# run_services.py and systemd drive gunicorn by signals. Its control socket
# (one path per user, ~/.gunicorn/gunicorn.ctl: each new instance unlinks the
# last one's) would be an unused management interface.
control_socket_disable = True
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
logger_class = "coreproject.gunicorn_logging.Logger"  # no empty "Listening at:" line
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
wsgi_app = "coreproject.wsgi:application"


def on_starting(server):
    # Per-worker sockets would bind beside another server on this port.
    if server.cfg.reuse_port:
        from coreproject.gunicorn_worker import refuse_addresses_in_use  # noqa: PLC0415  (the master loads no app code before it forks)

        refuse_addresses_in_use(server.cfg.address)
        # gunicorn's own "Listening at" line would be empty here (the workers bind):
        # coreproject/gunicorn_logging.py drops it.
        server.log.info("Workers listen at: %s (a SO_REUSEPORT socket each)", ", ".join(server.cfg.bind))


def post_worker_init(worker):
    # The app is loaded; import the URLconf and views too, then take all of it
    # out of garbage collection (coreproject/gctuning.py).
    from django.urls import get_resolver  # noqa: PLC0415  (after the app is loaded in this worker)

    from coreproject.gctuning import tune_gc  # noqa: PLC0415  (after the app is loaded in this worker)
    from eval.system_checks import static_manifest_check  # noqa: PLC0415  (after the app is loaded in this worker)

    get_resolver().url_patterns  # noqa: B018 (imports every view module)
    tune_gc()
    # Without collected static files every page would be a 500: refuse to serve.
    for problem in static_manifest_check():
        worker.log.error("%s %s", problem.msg, problem.hint)
        sys.exit(Arbiter.WORKER_BOOT_ERROR)  # gunicorn stops: no worker could serve
