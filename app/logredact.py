"""Keep tokens out of logs: a logging filter that blanks them in uvicorn's access and error lines.

The API reads tokens only from the Authorization header (which uvicorn never logs), but a
URL like the dashboard link `/?token=rls_...` is still a request line in the access log.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
_QUERY_TOKEN = re.compile(r"(?i)([?&;](?:access_)?token=)[^&\s\"']*")
_BEARER = re.compile(r"(?i)(\bbearer\s+)[^\s\"']+")
# Our own tokens anywhere else (a path, a message): they all start with this prefix.
_OUR_TOKEN = re.compile(r"rls_[A-Za-z0-9_\-]+")
LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """`text` with every token it contains replaced by [redacted]."""
    text = _QUERY_TOKEN.sub(rf"\g<1>{REDACTED}", text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    return _OUR_TOKEN.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    """Rewrites a record's message and string arguments, keeping the shape uvicorn's formatters unpack."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install(names: tuple[str, ...] = LOGGERS) -> None:
    """Add the filter to uvicorn's loggers, once; they keep it when uvicorn reconfigures logging."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
