"""Files made at first start (the generated secret key), created atomically.

Several processes start at once on a fresh machine (gunicorn's workers, the
worker, the daemon). Each writes its candidate to a temporary file of its own
and links it into place: the link either makes the whole file appear at once
or fails because another process's file is already there, which is then read.
Nobody ever reads a file half written, and nobody dies of losing the race.
"""

import os
import tempfile
from pathlib import Path


def read_or_create(path: Path, make_content) -> str:
    """The text of ``path``; when it does not exist, ``make_content()`` is
    written there (mode 0600) unless another process got there first."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    content = make_content()
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp makes it 0600
            handle.write(content)
        os.link(temporary, path)
    except FileExistsError:  # another process won: its file is complete
        return path.read_text().strip()
    finally:
        os.unlink(temporary)
    return content
