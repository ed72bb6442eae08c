#!/usr/bin/env python
"""Benchmark a dataset upload through the API: 100,000 records POSTed to
``/api/datasets/<name>/imports`` of a live gunicorn (deploy/gunicorn.conf.py,
one worker, DEBUG off) on PostgreSQL (a scratch database ``evalbench_datasets``,
dropped and re-created).

Passes, each one request (the file streamed from disk by the client):

- dry run: the whole file checked and classified, nothing written;
- first: 100,000 tasks added (a version);
- unchanged: the same file again (nothing written, no version);
- outputs: the same records, each with two outputs produced elsewhere
  (200,000 imported jobs in two runs of kind ``imported``).

Figures: wall time of the request (upload included) -> records/s, the
answer's counts, the rows in the table afterwards, and the web worker's peak
RSS (VmHWM of the gunicorn worker process, read after each pass: the peak so
far). The load average is printed before and after: the box is shared.

    .venv/bin/python bench/datasets.py [--records 100000] [--prompt-bytes 500] [--multipart]

Bars (issue 20): the first pass < 15 s, peak RSS of the web process < 200 MB.
Exits 0 (it reports figures, it does not judge them), 1 if a request failed.
"""

import argparse
import http.client
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import free_port, pg_url, reset_postgres

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "evalbench_datasets"
DATASET = "bench-upload"
WORDS = ["the", "model", "answer", "prompt", "review", "token", "stream", "output", "reference", "judge", "eval"]
MAX_SECONDS, MAX_RSS_MB = 15, 200


def generate(path, count, prompt_bytes, outputs=False, seed=7):
    rng = random.Random(seed)
    with open(path, "w") as out:
        for i in range(count):
            words, size = [], 0
            while size < prompt_bytes:
                word = rng.choice(WORDS)
                words.append(word)
                size += len(word) + 1
            record = {
                "id": f"bench-{i:07d}",
                "title": f"Benchmark task {i}",
                "prompt": " ".join(words)[:prompt_bytes],
                "reference": "the answer",
                "metadata": {"split": "test" if i % 5 == 0 else "train", "n": i},
            }
            if outputs:
                record["outputs"] = [
                    {"label": "app-v1", "text": f"answer {i} from v1"},
                    {"label": "app-v2", "text": f"a longer answer {i} from v2"},
                ]
            out.write(json.dumps(record) + "\n")


def setup(env):
    """Migrate the scratch database; a staff user with an API token. Returns the token."""
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    # DEBUG off serves static files from a manifest: collect them (into a scratch directory).
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    script = (
        "from django.contrib.auth.models import User; from eval.models import ApiToken; "
        f"u = User.objects.create_user('bench-datasets', password='{secrets.token_urlsafe(12)}', is_staff=True); "
        "print(ApiToken.issue(u, 'bench')[1])"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True, capture_output=True
    )
    return out.stdout.decode().strip().splitlines()[-1]


class Web:
    """gunicorn as the product runs it, one worker (so one process takes the upload)."""

    def __init__(self, env):
        self.port = free_port()
        web_env = {
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_ACCESS_LOG": "/dev/null",
            "GUNICORN_WORKERS": "1",
            "GUNICORN_TIMEOUT": "300",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
            cwd=ROOT,
            env=web_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_until_up(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not come up")

    def worker_pid(self):
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return int(children[0])

    def peak_rss_mb(self):
        for line in Path(f"/proc/{self.worker_pid()}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        self.process.terminate()
        self.process.wait(20)


def post(port, token, path, source, *, multipart, query=""):
    """(seconds, status, answer) of one upload, the file streamed from disk."""
    size = source.stat().st_size
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if multipart:
        boundary = uuid.uuid4().hex
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{source.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        headers["Content-Length"] = str(len(head) + size + len(tail))
        url = path + (f"?{query}" if query else "")
    else:
        head, tail = b"", b""
        headers["Content-Type"] = "application/x-ndjson"
        headers["Content-Length"] = str(size)
        url = path + "?format=jsonl" + (f"&{query}" if query else "")

    def body():
        yield head
        with open(source, "rb") as stream:
            while chunk := stream.read(1024 * 1024):
                yield chunk
        yield tail

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    try:
        conn.request("POST", url, body=body(), headers=headers)
    except BrokenPipeError:  # the server answered before reading it all (a refusal): read its answer
        pass
    response = conn.getresponse()
    answer = json.loads(response.read() or b"null")
    return time.perf_counter() - started, response.status, answer


def table_rows(env, sql):
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        return conn.execute(sql).fetchone()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--prompt-bytes", type=int, default=500)
    parser.add_argument("--multipart", action="store_true", help="send multipart/form-data (default: a JSONL body)")
    args = parser.parse_args()

    reset_postgres(DATABASE)
    static = tempfile.TemporaryDirectory(prefix="bench-static-")
    env = {
        **os.environ,
        "DATABASE_URL": pg_url(DATABASE),
        "DJANGO_DEBUG": "0",
        "TASK_SOURCE_NAME": "",
        "TASK_SOURCE": "",
    }
    env.update(LOG_LEVEL="WARNING", DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost", DJANGO_STATIC_ROOT=static.name)
    env["DJANGO_SECURE_SSL_REDIRECT"] = "0"  # plain HTTP on the loopback
    token = setup(env)
    web = Web(env)
    rows, failed = [], False
    try:
        web.wait_until_up()
        with tempfile.TemporaryDirectory(prefix="bench-datasets-") as workdir:
            plain, with_outputs = Path(workdir) / "tasks.jsonl", Path(workdir) / "with-outputs.jsonl"
            generate(plain, args.records, args.prompt_bytes)
            generate(with_outputs, args.records, args.prompt_bytes, outputs=True)
            print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
            path = f"/api/datasets/{DATASET}/imports"
            passes = [
                ("dry run", plain, "dry_run=1"),
                ("first", plain, ""),
                ("unchanged", plain, ""),
                ("outputs", with_outputs, ""),
            ]
            for label, source, query in passes:
                seconds, status, answer = post(web.port, token, path, source, multipart=args.multipart, query=query)
                failed |= status not in (200, 201)
                rows.append((label, source.stat().st_size / 1e6, seconds, status, answer, web.peak_rss_mb()))
                print(f"  {label}: {seconds:.2f} s, HTTP {status}", flush=True)
            tasks = table_rows(env, f"SELECT count(*) FROM eval_task WHERE source = '{DATASET}'")
            jobs = table_rows(env, "SELECT count(*) FROM eval_llmjob WHERE provider = 'imported'")
            load = os.getloadavg()
    finally:
        web.stop()
        static.cleanup()

    body = "multipart/form-data" if args.multipart else "a JSONL body"
    print(
        f"\nDataset upload benchmark: {args.records:,} records (~{args.prompt_bytes} B prompt), {body}, "
        "gunicorn (1 worker), PostgreSQL"
    )
    header = f"{'pass':<10} {'file MB':>8} {'wall s':>7} {'records/s':>10} {'HTTP':>5} {'counts':<58} {'peak RSS':>9}"
    print(header)
    print("-" * len(header))
    for label, mb, seconds, status, answer, rss in rows:
        keys = ("added", "changed", "unchanged", "missing", "outputs", "version")
        counts = (
            " ".join(f"{k}={answer.get(k)}" for k in keys)
            if isinstance(answer, dict) and "added" in answer
            else str(answer)[:58]
        )
        rate = args.records / seconds
        print(f"{label:<10} {mb:>8.1f} {seconds:>7.2f} {rate:>10,.0f} {status:>5} {counts:<58} {rss:>6.0f} MB")
    print(f"rows afterwards: {tasks:,} tasks, {jobs:,} imported jobs")
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"bars: first pass < {MAX_SECONDS} s, web worker peak RSS < {MAX_RSS_MB} MB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
