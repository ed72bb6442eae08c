"""One JSON object per log line (LOG_FORMAT=json)."""

import json
import logging

# Fields that callers pass with ``extra=`` and that belong on the line.
_EXTRA_FIELDS = ("job_id", "worker_id", "task_id", "provider", "model", "attempt", "status")


class JsonFormatter(logging.Formatter):
    def format(self, record):
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in _EXTRA_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = str(value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line)
