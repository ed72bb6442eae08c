"""Run the whole suite: SQLite first, then PostgreSQL when reachable.

REQUIRE_POSTGRES=1 turns "PostgreSQL unreachable" into a failure (CI).
Pytest's exit code 5 (no tests collected) counts as a failure: a suite that
ran nothing proves nothing.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/eval")


def postgres_reachable(url):
    try:
        import psycopg

        with psycopg.connect(url.replace("/eval", "/postgres"), connect_timeout=3):
            return True
    except Exception as error:
        print(f"PostgreSQL at {url} unreachable: {error}")
        return False


def run(label, extra_env, args):
    print(f"\n===== test suite on {label} =====", flush=True)
    env = {**os.environ, **extra_env}
    code = subprocess.call([sys.executable, "-m", "pytest", *args], cwd=ROOT, env=env)
    if code == 5:
        print(f"{label}: pytest collected no tests")
    return code


def main():
    args = sys.argv[1:]
    sqlite_env = {"DATABASE_URL": f"sqlite:///{ROOT / '.local' / 'suite.sqlite3'}"}
    results = {"sqlite": run("SQLite", sqlite_env, args)}
    require_pg = os.environ.get("REQUIRE_POSTGRES", "").lower() in {"1", "true", "yes"}
    if postgres_reachable(PG_URL):
        results["postgresql"] = run("PostgreSQL", {"DATABASE_URL": PG_URL}, args)
    elif require_pg:
        print("REQUIRE_POSTGRES=1 but PostgreSQL is unreachable")
        results["postgresql"] = 1
    else:
        print("SKIPPED: PostgreSQL pass (unreachable; set REQUIRE_POSTGRES=1 to make this a failure)")
    print("\n===== summary =====")
    for label, code in results.items():
        print(f"{label}: {'ok' if code == 0 else f'FAILED (exit {code})'}")
    sys.exit(0 if all(code == 0 for code in results.values()) else 1)


if __name__ == "__main__":
    main()
