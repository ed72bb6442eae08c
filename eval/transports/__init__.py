"""How a worker learns of jobs: each transport only delivers job ids to the executor."""

from eval.transports.db import DbTransport
from eval.transports.pubsub import PubSubTransport

TRANSPORTS = {DbTransport.name: DbTransport, PubSubTransport.name: PubSubTransport}


def make_transport(name, executor, **options):
    """The transport called ``name`` (``db`` or ``pubsub``) delivering to ``executor``."""
    return TRANSPORTS[name](executor, **options)
