from django.core.management.base import BaseCommand

from eval.demo import DEMO_TASKS, load_demo_tasks


class Command(BaseCommand):
    help = "Load the demo evaluation tasks (idempotent)."

    def handle(self, *args, **options):
        created = load_demo_tasks()
        self.stdout.write(f"demo tasks: {created} created, {len(DEMO_TASKS) - created} already present")
