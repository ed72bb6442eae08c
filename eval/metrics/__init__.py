"""Prometheus metrics: the event hooks, the database gauges, ``GET /metrics``.

Two kinds of numbers:

* **Events, counted where they happen** (``events.py``): ``observe_job()`` in
  the worker (duration and queue-wait histograms, provider errors by kind,
  tokens, cost) and ``observe_poll()`` in the poll endpoint (requests by
  status code, hence the 304 ratio). Each process counts its own events,
  so with several processes the counts are summed across them:

  - ``PROMETHEUS_MULTIPROC_DIR`` set (``run_services.py`` sets it, to a fresh
    directory, for every child it starts): prometheus-client's multiprocess
    mode. Every process writes its samples to memory-mapped files in that
    directory and a scrape, answered by any gunicorn worker, merges the
    files of all processes on the machine (web, worker, daemon). Only
    counters and histograms are used (no live gauges), so files of dead
    processes stay correct and no ``mark_process_dead`` hook is needed.
  - unset (tests, ``manage.py runserver``, a one-off command): a plain
    in-process registry.

  The mode is fixed when the process starts (prometheus-client reads the
  variable when it is first imported), so set it in the environment, never
  from code.

* **State, read from the database at scrape time** (``collector.py``): jobs
  by status, the oldest queued job's age, workers online, scheduled runs
  refused. The database is the single source of truth, so these are right
  whatever the number of web, worker or daemon processes, and on every web
  VM behind a balancer.

``views.py`` serves both at ``/metrics`` (staff or ``METRICS_TOKEN``). A
machine that runs workers but no web server (scaling out) serves its event
counters with ``python -m eval.metrics --listen 127.0.0.1:9464``
(``__main__.py``, the ``eval-metrics.service`` unit), reading the same
directory; the database gauges come from any web VM's ``/metrics``.

This package sits below the API and the worker, which call the hooks; it
imports neither. Importing it loads only the event hooks (no Django models),
so the stand-alone exporter runs without Django set up.
"""

from eval.metrics.events import observe_job, observe_poll

__all__ = ["observe_job", "observe_poll"]
