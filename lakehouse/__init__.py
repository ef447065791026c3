"""lakehouse: Telegram updates, tweets and movie data to bronze/silver/gold Delta tables."""

from lakehouse.secrets import install as _install_redaction

# Before anything logs: every log record of a process running our code is redacted.
_install_redaction()
