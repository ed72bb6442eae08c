import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from eval.transports.pubsub import SubscriptionMissing
from eval.worker.service import serve


class Command(BaseCommand):
    help = "Run LLM jobs: receive them from the transport, call the model, record the result."

    def add_arguments(self, parser):
        parser.add_argument("--transport", choices=["db", "pubsub"], default=None, help="default: JOB_TRANSPORT")
        parser.add_argument("--concurrency", type=int, default=None, help="jobs in flight (WORKER_CONCURRENCY)")
        parser.add_argument("--once", action="store_true", help="run until nothing is queued, then exit")
        parser.add_argument("--max-jobs", type=int, default=None, help="exit after N finished or handed-back jobs")

    def handle(self, *args, transport, concurrency, once, max_jobs, **options):
        if concurrency is not None and concurrency < 1:
            raise CommandError("--concurrency must be at least 1", returncode=2)
        if max_jobs is not None and max_jobs < 1:
            raise CommandError("--max-jobs must be at least 1", returncode=2)
        transport = transport or settings.JOB_TRANSPORT
        try:
            asyncio.run(
                serve(transport=transport, concurrency=concurrency, once=once, max_jobs=max_jobs, own_process=True)
            )
        except KeyboardInterrupt:
            pass
        except SubscriptionMissing as error:  # a set-up step, said plainly (no traceback)
            raise CommandError(str(error), returncode=1) from None
