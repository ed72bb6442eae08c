"""``manage.py create_reviewer USERNAME [--staff] [--password-stdin]``.

Creates the user, or updates an existing one, as an active member of the
``reviewers`` group. Exit codes: 0 ok, 1 error (password rejected by the
validators, database error), 2 usage (bad username, no
password on stdin).
"""

import secrets
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, transaction

from eval import access

GROUP = "reviewers"


class Command(BaseCommand):
    help = (
        "Create a reviewer (or update an existing user): an active member of the 'reviewers' group. "
        "A new user gets a generated password, printed once, unless --password-stdin is given; an "
        "existing user keeps their password unless --password-stdin or --reset-password is given."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true", help="also make the user staff (dashboard, admin site)")
        parser.add_argument("--email", default=None, help="set the user's email address")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of stdin (e.g. a secret manager) instead of generating one",
        )
        parser.add_argument(
            "--reset-password",
            action="store_true",
            help="generate and print a new password for an existing user",
        )

    def handle(self, *args, username, staff, email, password_stdin, reset_password, **options):
        username = self._clean_username(username)
        if password_stdin and reset_password:
            raise CommandError("use either --password-stdin or --reset-password", returncode=2)
        password = self._read_password(options.get("stdin") or sys.stdin) if password_stdin else None
        try:
            with transaction.atomic():
                user, created, generated, password = self._save(username, password, staff, email, reset_password)
        except DatabaseError as error:
            raise CommandError(f"database error: {error}", returncode=1) from None
        self._report(user, username, created, generated, password)

    def _clean_username(self, username):
        username = username.strip()
        if not username:
            raise CommandError("the username must not be empty", returncode=2)
        try:
            get_user_model().username_validator(username)
        except ValidationError as error:
            raise CommandError(f"invalid username {username!r}: {' '.join(error.messages)}", returncode=2) from None
        return username

    def _save(self, username, password, staff, email, reset_password):
        """Create or update the user (row locked); returns (user, created, generated password, password)."""
        User = get_user_model()
        group = self._group()
        user = User.objects.select_for_update().filter(username=username).first()
        created = user is None
        if created:
            user = User(username=username)
        generated = None
        if password is None and (created or reset_password or not user.has_usable_password()):
            password = generated = secrets.token_urlsafe(15)
        if password is not None:
            self._set_password(user, password)
        if staff:
            user.is_staff = True
        if email is not None:
            user.email = email
        user.is_active = True
        user.save()
        user.groups.add(group)
        return user, created, generated, password

    @staticmethod
    def _set_password(user, password):
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise CommandError(f"password rejected: {' '.join(error.messages)}", returncode=1) from None
        user.set_password(password)

    def _report(self, user, username, created, generated, password):
        role = "staff reviewer" if access.is_staff(user) else "reviewer"
        action = "Created" if created else "Updated"
        self.stdout.write(f"{action} {role} {username!r}.")
        if generated is not None:
            self.stdout.write(f"Password (shown once, store it now): {generated}")
        elif password is not None:
            self.stdout.write("Password set from stdin.")
        else:
            self.stdout.write("Password unchanged.")

    def _group(self):
        """The reviewers group (made by a migration; made again if someone deleted it)."""
        group, created = Group.objects.get_or_create(name=GROUP)
        if created:
            permission = access.permission_row(access.REVIEW_PERMISSION)
            if permission is None:
                raise CommandError(f"the {access.REVIEW_PERMISSION} permission is missing: run `manage.py migrate`")
            group.permissions.add(permission)
        return group

    def _read_password(self, stdin):
        line = stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise CommandError("--password-stdin: no password on stdin (expected one line)", returncode=2)
        return password
