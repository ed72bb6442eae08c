"""The module-size house rule that `make lint` runs (tests/module_size.py)."""

import subprocess
import sys

from tests import module_size


def test_it_finds_no_module_over_the_limit_in_the_tree():
    assert module_size.too_long() == []


def test_it_names_a_module_over_the_limit_and_skips_migrations(tmp_path):
    (tmp_path / "eval" / "migrations").mkdir(parents=True)
    (tmp_path / "eval" / "small.py").write_text("x = 1\n" * 349)
    (tmp_path / "eval" / "big.py").write_text("x = 1\n" * 350)
    (tmp_path / "eval" / "migrations" / "0001_initial.py").write_text("x = 1\n" * 2000)
    assert module_size.too_long(root=tmp_path, packages=("eval",)) == [("eval/big.py", 350)]


def test_the_lint_script_exits_0_on_the_tree():
    done = subprocess.run([sys.executable, module_size.__file__], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout
