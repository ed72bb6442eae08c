"""The product's settings plus the comparison endpoints of bench/naive_poll.py.

BENCH_SESSION_ENGINE and BENCH_CONN_HEALTH_CHECKS=0 let the benchmark show
what those settings cost (experiments only; the defaults are the product's)."""

import os

from coreproject.settings import *  # noqa: F403
from coreproject.settings import DATABASES

ROOT_URLCONF = "bench.naive_poll"
if os.environ.get("BENCH_SESSION_ENGINE"):
    SESSION_ENGINE = os.environ["BENCH_SESSION_ENGINE"]
if os.environ.get("BENCH_CONN_HEALTH_CHECKS") == "0":
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
