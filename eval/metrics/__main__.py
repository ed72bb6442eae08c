"""``python -m eval.metrics [--listen HOST:PORT]``: serve this machine's event
metrics (PROMETHEUS_MULTIPROC_DIR) over HTTP, for VMs that run workers but
no web server (deploy/eval-metrics.service). No database gauges, no login:
bind it to an address only the scraper reaches. Needs no Django set-up."""

import argparse
import sys
from pathlib import Path
from wsgiref.simple_server import make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.multiprocess import MultiProcessCollector

from eval.metrics.events import MULTIPROC_DIR


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m eval.metrics",
        description="Serve this machine's event metrics (PROMETHEUS_MULTIPROC_DIR) over HTTP, "
        "for VMs that run workers but no web server. No database gauges.",
    )
    parser.add_argument("--listen", default="127.0.0.1:9464", help="host:port (default 127.0.0.1:9464)")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    if not port.isdigit():
        parser.error("--listen must be host:port")
    return host or "127.0.0.1", int(port)


def main(argv=None):
    host, port = parse_args(argv)
    if not MULTIPROC_DIR or not Path(MULTIPROC_DIR).is_dir():
        print("eval.metrics: PROMETHEUS_MULTIPROC_DIR must name an existing directory", file=sys.stderr)
        return 1
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=MULTIPROC_DIR)
    server = make_server(host, port, make_wsgi_app(registry))
    print(f"eval.metrics: serving {MULTIPROC_DIR} on http://{host}:{port}/metrics", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
