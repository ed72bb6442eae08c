"""The JSON API (DESIGN "HTTP API") on django-ninja: app.py builds the
NinjaAPI (auth, error shape, docs) from a router per resource (tasks.py,
reviews.py, jobs.py, catalogue.py, status.py) and the pydantic shapes in
schemas.py; the poll stays a plain view (plain.py). Views stay thin: job
state changes go through the job engine (eval/jobs)."""
