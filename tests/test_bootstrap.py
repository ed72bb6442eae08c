"""`manage.py bootstrap`, the first-start set-up `make run` runs before the services."""

import pytest
from django.core.management import call_command

from eval.models import Task


@pytest.mark.django_db
def test_bootstrap_loads_the_demo_once_and_collects_static_files_when_debug_is_off(settings, tmp_path, capsys):
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "static"
    settings.LOCAL_DIR = tmp_path / "local"
    call_command("bootstrap")
    assert (tmp_path / "static" / "staticfiles.json").exists(), "DJANGO_DEBUG=0 make run: every page a 500"
    loaded = Task.objects.count()
    assert loaded > 0
    assert "Created the login 'admin'" in capsys.readouterr().out
    assert (tmp_path / "local" / "admin-password").stat().st_mode & 0o777 == 0o600
    call_command("bootstrap")
    assert Task.objects.count() == loaded
    assert "Created the login" not in capsys.readouterr().out


@pytest.mark.django_db
def test_bootstrap_with_debug_on_collects_nothing(settings, tmp_path):
    settings.DEBUG = True
    settings.STATIC_ROOT = tmp_path / "static"
    settings.LOCAL_DIR = tmp_path / "local"
    call_command("bootstrap")
    assert not (tmp_path / "static").exists()
