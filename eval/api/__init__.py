"""The JSON API (DESIGN "HTTP API"): views stay thin; job state changes go
through eval/jobs/transitions.py."""
