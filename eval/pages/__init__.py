"""HTML pages. Job cards and pairs are drawn and kept live by eval/static/eval/*.js
from the JSON API; these views only render the frame and the task text. Every
page refuses the query strings the API refuses (eval/api/request_data.py) with a
400 page, never a 500: ``@page`` (common.py) checks them before the view runs."""
