import os

from django.core.wsgi import get_wsgi_application

from coreproject.chunked_bodies import ChunkedBodies

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coreproject.settings")
application = ChunkedBodies(get_wsgi_application())
