import asyncio

from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from eval import demo
from eval.worker import service


def _drain():
    """Run the real worker in this process until no job is queued or running."""
    asyncio.run(service.serve(transport="db", once=True))


class Command(BaseCommand):
    help = (
        "Load the demo evaluation tasks (idempotent). With --with-results, also a comparison of the three "
        "offline demo models (a run each, run here by the worker), an echo-judge run and two demo reviewers' "
        "verdicts, so the results page is filled; running it again adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--with-results",
            action="store_true",
            help="also seed demo runs, a judge run and demo reviewers' verdicts (offline: the echo models)",
        )

    def handle(self, *args, **options):
        if not options["with_results"]:
            created = demo.load_demo_tasks()
            self.stdout.write(f"demo tasks: {created} created, {len(demo.DEMO_TASKS) - created} already present")
            return
        # The echo models pace their words for the live pages; the seed needs no pacing.
        with override_settings(ECHO_CHUNK_DELAY_MS=0):
            try:
                made = demo.load_demo_results(drain=_drain)
            except demo.DemoUnavailable as error:
                raise CommandError(str(error)) from None
        self.stdout.write(
            f"demo results: {made['tasks']} tasks, {made['runs']} runs and {made['judgements']} "
            "reviewer judgements created (runs by the worker here; open /results/)"
        )
