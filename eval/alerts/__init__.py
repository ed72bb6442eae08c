"""Alerts (DESIGN "Alerts"): the daemon evaluates the rules each pass and
keeps their state in the database (eval/models/alerts.py), so a daemon that
takes over neither fires them again nor forgets to resolve them.

- ``rules.py``: pure functions from a snapshot of the database and the time
  to the conditions that hold;
- ``snapshot.py``: the few queries the rules read;
- ``state.py``: fire, repeat and resolve as conditional updates, and the
  notices each owes;
- ``notify.py``: email and webhook, each send bounded in time;
- ``step.py``: the daemon's step, with its own time budget.

The dashboard and ``/api/status`` read ``active_alerts()``.
"""

from eval.alerts.state import active_alerts
from eval.alerts.step import run_step

__all__ = ["active_alerts", "run_step"]
