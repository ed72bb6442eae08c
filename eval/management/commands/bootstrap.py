"""First-start set-up for `make run`: migrate, static files when DEBUG is off,
demo data, the admin login."""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from eval.demo import load_demo_tasks
from eval.models import Task


class Command(BaseCommand):
    help = (
        "Migrate, collect static files when DEBUG is off, load demo tasks into an empty database, "
        "and create the 'admin' login on first start."
    )

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        if not settings.DEBUG:
            # With DEBUG off pages name their static files through the manifest (eval.E040).
            call_command("collectstatic", interactive=False, verbosity=0)
        if not Task.objects.exists():
            self.stdout.write(f"loaded {load_demo_tasks()} demo tasks")
        self._ensure_admin()

    def _ensure_admin(self):
        User = get_user_model()
        password_file = settings.LOCAL_DIR / "admin-password"
        from_env = os.environ.get("DJANGO_ADMIN_PASSWORD")
        if User.objects.filter(username="admin").exists():
            if from_env:
                user = User.objects.get(username="admin")
                user.set_password(from_env)
                user.save(update_fields=["password"])
            return
        password = from_env or secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "", password)
        if not from_env:
            settings.LOCAL_DIR.mkdir(parents=True, exist_ok=True)
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(password + "\n")
            self.stdout.write(
                self.style.SUCCESS(
                    f"\n  Created the login 'admin' with password: {password}\n"
                    f"  (kept in {_shown(password_file)}, readable only by you)\n"
                )
            )
        else:
            self.stdout.write("Created the login 'admin' with the password from DJANGO_ADMIN_PASSWORD")


def _shown(path):
    """The path from the checkout when it is inside it (DJANGO_LOCAL_DIR may be anywhere)."""
    return path.relative_to(settings.BASE_DIR) if path.is_relative_to(settings.BASE_DIR) else path
