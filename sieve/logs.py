"""Structured logs: one JSON object per line on stderr, for the API and the workers alike."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from pythonjsonlogger.json import JsonFormatter

FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


def formatter(component: str) -> logging.Formatter:
    return JsonFormatter(
        FIELDS,
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        static_fields={"component": component},
        timestamp=False,
    )


class ContextFilter(logging.Filter):
    """Adds fields from the running request or job (e.g. its request id) to every record."""

    def __init__(self, context: Callable[[], dict]):
        super().__init__()
        self.context = context

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in self.context().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def configure(component: str, context: Callable[[], dict] | None = None, level: int = logging.INFO) -> None:
    """Sends every log record of this process to stderr as a JSON line naming `component` ('api', 'worker')."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(component))
    if context is not None:
        handler.addFilter(ContextFilter(context))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
