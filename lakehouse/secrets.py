"""Every secret the project reads, and the one layer that keeps them inside the process.

The secrets and where they come from:

- ``TELEGRAM_BOT_TOKEN`` (or ``TelegramResource.bot_token``): part of every Bot API URL.
- ``TELEGRAM_WEBHOOK_SECRET``: the ``secret_token`` sent to ``setWebhook`` and checked by the
  webhook on every request.
- ``TWITTER_BEARER_TOKEN`` (or ``TwitterResource.bearer_token``): the ``Authorization`` header.
- ``TMDB_API_KEY`` (or ``TmdbResource.api_key``): a v3 key in the query string or a v4 read
  access token in the ``Authorization`` header.
- ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``: the lake's S3
  storage options (``Lake.storage_options``), also handed to dbt.

A value of one of these variables is a secret whenever it is set (the variables are read at each
redaction, so one set after start is covered too). A value that arrives another way (a resource
field, an argument, explicit storage options) is registered by the code that receives it
(``register``, or by wrapping it in ``Secret``).

``redact`` replaces each secret, in every form it travels in, by ``[REDACTED]``: the raw value;
percent-encoded with any set of safe characters, either hex case, ``+`` for a space, or encoded
twice (``quote``, ``quote_plus``, requests' requoting); JSON-escaped (``\\/``, ``\\uXXXX``, as
the Bot API writes them); and base64 of the whole value (standard or URL-safe, padded or not).
It is applied

- to every log record the process makes: a log-record factory (``install``) covers every logger,
  Dagster's ``context.log`` and urllib3's retry lines included, and ``SecretFilter`` is set on the
  project's, urllib3's and requests' loggers as well;
- to every error our clients raise (``ApiError`` redacts its own message), to what the CLI prints
  and to uncaught tracebacks (``excepthook``);
- to Dagster metadata built from outside text (``redact_metadata``) and to error bodies kept as
  records (``redact_bytes``).

Reprs never show a secret: ``Secret`` prints as ``[REDACTED]``, ``Lake`` hides the values of
its storage options and the resources' credential fields are left out of their reprs.

Values shorter than ``MIN_SECRET_LENGTH`` characters are not treated as secrets: no real
credential is that short, and redacting them would scrub ordinary words from every log line.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterable, Mapping
from functools import lru_cache
from types import TracebackType
from typing import Any

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 8
SECRET_ENV_VARS = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
    "TWITTER_BEARER_TOKEN",
    "TMDB_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)
# Storage option keys whose values are credentials (delta-rs / object_store spellings).
SECRET_OPTION_KEYS = frozenset({
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
    "access_key_id", "secret_access_key", "session_token", "token",
})
# The loggers that see URLs and bodies of our calls; the record factory covers the rest.
FILTERED_LOGGERS = (
    "lakehouse", "requests", "urllib3", "urllib3.connectionpool", "urllib3.connection",
    "urllib3.poolmanager", "urllib3.response", "urllib3.util.retry",
)

# Replaced whole, never changed in place: log records are redacted from any thread, and a
# reader must never iterate a set another thread is adding to.
_registered: frozenset[str] = frozenset()
_lock = threading.Lock()


def register(*values: str | None) -> None:
    """Treat each value as a secret from now on, in this process."""
    global _registered
    fresh = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH}
    if fresh - _registered:
        with _lock:
            _registered = _registered | fresh


def current_secrets() -> frozenset[str]:
    """The registered values and the secret environment variables' current values."""
    from_env = (os.environ.get(name) for name in SECRET_ENV_VARS)
    return frozenset({*_registered,
                      *(v for v in from_env if v and len(v) >= MIN_SECRET_LENGTH)})


class Secret:
    """A credential that never shows itself: ``str``/``repr`` print ``[REDACTED]``.

    ``reveal()`` gives the value to the one place that must send it (a URL, a header).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str):
        register(value)
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    __str__ = __repr__


# -- the patterns -----------------------------------------------------------------------------

def _hex(byte: int) -> str:
    """``%2F`` matched in either case: ``%2[fF]``."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in f"{byte:02X}")


def _char_forms(ch: str) -> str:
    """A regex matching one character of a secret in each encoding it may travel in."""
    utf8 = ch.encode()
    forms = [
        re.escape(ch),
        "".join(f"%{_hex(b)}" for b in utf8),  # percent-encoded (any safe set)
        "".join(f"%25{_hex(b)}" for b in utf8),  # percent-encoded twice
    ]
    if len(ch.encode("utf-16-le")) == 2:  # JSON \uXXXX (a BMP character)
        forms.append(r"\\u" + "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c
                                      for c in f"{ord(ch):04X}"))
    extra = {" ": [r"\+"], "/": [r"\\/"], '"': [r'\\"'], "\\": [r"\\\\"],
             "\n": [r"\\n"], "\r": [r"\\r"], "\t": [r"\\t"]}
    forms += extra.get(ch, [])
    return "(?:" + "|".join(forms) + ")"


def _secret_forms(secret: str) -> list[str]:
    raw = secret.encode()
    b64 = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    b64 |= {v.rstrip("=") for v in b64}
    # Longest first: a padded form is not left half-matched by its unpadded prefix.
    return ["".join(_char_forms(ch) for ch in secret),
            *(re.escape(v) for v in sorted(b64, key=lambda v: (-len(v), v)))]


@lru_cache(maxsize=8)
def _patterns(secrets: frozenset[str]) -> tuple[re.Pattern[str], re.Pattern[bytes]]:
    forms = [form for s in sorted(secrets, key=len, reverse=True) for form in _secret_forms(s)]
    text = "|".join(forms)
    return re.compile(text), re.compile(text.encode())


def redact(text: str, extra: Iterable[str | None] = ()) -> str:
    """``text`` with every secret (and each of ``extra``) replaced by ``[REDACTED]``."""
    register(*extra)
    secrets = current_secrets()
    if not secrets or not text:
        return text
    return _patterns(secrets)[0].sub(REDACTED, text)


def redact_bytes(data: bytes) -> bytes:
    """``data`` with every secret (in the same forms as ``redact``) replaced."""
    secrets = current_secrets()
    if not secrets or not data:
        return data
    return _patterns(secrets)[1].sub(REDACTED.encode(), data)


def contains_secret(text: str) -> bool:
    secrets = current_secrets()
    return bool(secrets and text and _patterns(secrets)[0].search(text))


def redact_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Dagster metadata with secrets removed from every text value (nested ones included)."""
    return {key: _redact_value(value) for key, value in metadata.items()}


def _redact_value(value: Any) -> Any:
    import dagster as dg

    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dg.MetadataValue):  # before tuple: some are tuples underneath
        return _redact_metadata_value(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
    return value


def _redact_metadata_value(value: Any) -> Any:
    import dagster as dg

    if isinstance(value, dg.TextMetadataValue):
        return dg.MetadataValue.text(redact(value.text))
    if isinstance(value, dg.MarkdownMetadataValue):
        return dg.MetadataValue.md(redact(value.md_str))
    if isinstance(value, dg.UrlMetadataValue):
        return dg.MetadataValue.url(redact(value.url))
    if isinstance(value, dg.JsonMetadataValue):
        return dg.MetadataValue.json(_redact_value(value.data))
    return value


def redact_options(options: Mapping[str, str]) -> dict[str, str]:
    """Storage options fit for a repr: credential values replaced."""
    return {k: REDACTED if k in SECRET_OPTION_KEYS else redact(v) for k, v in options.items()}


# -- logging and uncaught errors --------------------------------------------------------------

def redact_record(record: logging.LogRecord) -> None:
    """Rewrite a log record's message (and formatted traceback) without secrets."""
    secrets = current_secrets()
    if not secrets:
        return
    pattern = _patterns(secrets)[0]
    try:
        message = record.getMessage()
    except Exception:  # a malformed call (args not matching msg): keep it as given
        message = str(record.msg)
    if pattern.search(message):
        record.msg, record.args = pattern.sub(REDACTED, message), ()
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if pattern.search(text):
            record.exc_text = pattern.sub(REDACTED, text)
    if record.stack_info and pattern.search(record.stack_info):
        record.stack_info = pattern.sub(REDACTED, record.stack_info)


class SecretFilter(logging.Filter):
    """Removes secrets from every record passing through (set on a logger or a handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_FILTER = SecretFilter()
_installed = False


def install() -> None:
    """Redact every log record this process makes, from now on (idempotent).

    A log-record factory sees each record as it is made, whatever the logger (Dagster's
    ``context.log`` builds its records through the same factory); ``SecretFilter`` on the named
    loggers keeps working if another library replaces the factory later.
    """
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                redact_record(record)
            except Exception:  # fail closed: a record that cannot be checked is not shown
                record.msg, record.args, record.exc_info = "[log record withheld: redaction " \
                    "failed]", (), None
            return record

        logging.setLogRecordFactory(factory)
        for name in FILTERED_LOGGERS:
            logging.getLogger(name).addFilter(_FILTER)
        _installed = True


def excepthook(kind: type[BaseException], error: BaseException,
               tb: TracebackType | None) -> None:
    """``sys.excepthook`` printing the traceback with secrets removed."""
    sys.stderr.write(redact("".join(traceback.format_exception(kind, error, tb))))
