"""gunicorn's logger, without its empty "Listening at:" line.

With a SO_REUSEPORT socket per worker (deploy/gunicorn.conf.py) the master
listens on nothing, so gunicorn logged "Listening at:  (927)". The config's
``on_starting`` says where the workers listen instead; every other line is
gunicorn's own.
"""

from gunicorn import glogging


class Logger(glogging.Logger):
    def info(self, msg, *args, **kwargs):
        if isinstance(msg, str) and msg.startswith("Listening at:") and args and not args[0]:
            return
        super().info(msg, *args, **kwargs)
