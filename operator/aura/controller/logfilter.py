"""The log filter `aura operator` puts on its handlers: kopf's noise out, expected waits quiet.

kopf reports every `TemporaryError` as "failed temporarily" at ERROR. A pass that is merely
waiting for a server to boot is neither an error nor news: `errors.to_kopf` prefixes the kopf
error of every `Wait` with `errors.WAIT_MARKER`, and this filter lowers exactly those records
to DEBUG, so they are dropped at any higher level (the level check of the logger already
passed them as ERROR). Real temporary failures keep kopf's ERROR.
"""

from __future__ import annotations

import logging

from aura.controller.errors import WAIT_MARKER

_TEMPORARY = "failed temporarily: "
_KOPF_EXTRAS = ("settings", "k8s_skip", "k8s_ref")
_SILENT_WATCH = "runtime_secret_changed"  # handlers.py: the watch of every Secret


class KopfNoise(logging.Filter):
    """Drop kopf's bulky per-record extras, lower waits to DEBUG, drop successful timer ticks.

    `level` is the level the handlers log at: a lowered record below it is dropped here.
    """

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        for key in _KOPF_EXTRAS:
            record.__dict__.pop(key, None)
        message = str(record.msg)
        if record.levelno == logging.ERROR and _TEMPORARY + WAIT_MARKER in message:
            if self.level > logging.DEBUG:
                return False
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        # One line per Agent per health tick, or per Secret the Secret watch sees, says
        # nothing; failures are still logged.
        if message.startswith("Timer ") and message.endswith(" succeeded."):
            return False
        return not message.endswith(_SILENT_WATCH + "' succeeded.")
