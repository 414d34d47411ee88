"""The log filter `aura operator` puts on its handlers: kopf's noise out, expected waits at INFO.

kopf reports every `TemporaryError` as "failed temporarily" at ERROR. A pass that is merely
waiting for a server to boot is not an error: `errors.to_kopf` prefixes the kopf error of every
`Wait` with `errors.WAIT_MARKER`, and this filter lowers exactly those records to INFO.
"""

from __future__ import annotations

import logging

from aura.controller.errors import WAIT_MARKER

_TEMPORARY = "failed temporarily: "
_KOPF_EXTRAS = ("settings", "k8s_skip", "k8s_ref")


class KopfNoise(logging.Filter):
    """Drop kopf's bulky per-record extras, log waits at INFO, drop successful timer ticks."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key in _KOPF_EXTRAS:
            record.__dict__.pop(key, None)
        message = str(record.msg)
        if record.levelno == logging.ERROR and _TEMPORARY + WAIT_MARKER in message:
            record.levelno, record.levelname = logging.INFO, "INFO"
        # One line per Agent per health tick says nothing; failures are still logged.
        return not (message.startswith("Timer ") and message.endswith(" succeeded."))
