from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from eval.broker.pubsub_admin import ensure_resources


class Command(BaseCommand):
    help = "Create the Pub/Sub topic, worker subscription and dead-letter topic if missing (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--subscription", default=None, help=f"default {settings.PUBSUB_SUBSCRIPTION}")
        parser.add_argument("--ack-deadline", type=int, default=60)

    def handle(self, *args, subscription, ack_deadline, **options):
        try:
            report = ensure_resources(subscription=subscription, ack_deadline_seconds=ack_deadline)
        except Exception as error:
            raise CommandError(f"Pub/Sub set-up failed: {error}") from error
        for resource, state in report:
            self.stdout.write(f"{state:8} {resource}")
