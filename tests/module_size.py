"""House rule (`make lint`): every module under eval/ and coreproject/ is under
MAX_LINES lines, migrations aside. A module that grows past it is split along
a seam, not waved through.

    python tests/module_size.py    # exit 1 naming each module over the limit
"""

import sys
from pathlib import Path

MAX_LINES = 350
PACKAGES = ("eval", "coreproject")
ROOT = Path(__file__).resolve().parent.parent


def too_long(root=ROOT, packages=PACKAGES, limit=MAX_LINES):
    """[(path relative to root, lines)] of the modules at or over ``limit``, longest first."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.relative_to(root).parts:
                continue
            with path.open("rb") as source:
                lines = sum(1 for _ in source)
            if lines >= limit:
                found.append((path.relative_to(root).as_posix(), lines))
    return sorted(found, key=lambda item: -item[1])


def main():
    found = too_long()
    for path, lines in found:
        print(f"{path}: {lines} lines (a module stays under {MAX_LINES}; split it along a seam)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
