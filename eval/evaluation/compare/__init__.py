"""Two runs task by task (DESIGN "Comparison"; issue 22 item 2).

- ``pairs.py``: one SQL statement joins, per task both runs ran, the latest
  ended job of each (succeeded or failed; a failed job fails every check);
- ``verdicts.py``: what judges and reviewers said of the two runs' outputs;
- ``service.py``: the comparison as the API and the page show it: the
  summary per check and per judge with the one-sided exact binomial p, and
  the rows, filtered and paged;
- ``gate.py``: the verdict a CI job or a scheduled run gates on (Holm's
  correction across the checks and the judges).
"""
