"""Telegram Bot API: the HTTP client, its Dagster resource, and the sample backend switch.

The token is part of every URL (``/bot<token>/getUpdates``) and the webhook secret is sent to
``setWebhook``: both are ``lakehouse.secrets.Secret``s, redacted from every error (an answer
echoing them included, raw or URL-encoded), log line and repr.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import dagster as dg
import requests
from pydantic import Field

from lakehouse.secrets import Secret, redact, register
from lakehouse.sources.http import ApiError, build_session, send
from lakehouse.sources.telegram_sample import SampleChat, SampleTelegramBot

DEFAULT_API_BASE_URL = "https://api.telegram.org"
MESSAGE_UPDATE_TYPES = ("message", "edited_message", "channel_post", "edited_channel_post")
ALLOWED_UPDATES = [
    *MESSAGE_UPDATE_TYPES, "message_reaction", "callback_query", "chat_member", "my_chat_member",
    "poll", "poll_answer", "chat_boost",
]


class UpdatesSource(Protocol):
    def get_updates_raw(self, offset: int | None = None, limit: int = 100, timeout: int = 0,
                        allowed_updates: list[str] | None = None) -> bytes: ...


def telegram_retry_after(response: requests.Response) -> float | None:
    """The Bot API says how long to wait in the body: ``parameters.retry_after``."""
    try:
        return float(response.json()["parameters"]["retry_after"])
    except (ValueError, KeyError, TypeError):
        header = response.headers.get("Retry-After")
        return float(header) if header and header.isdigit() else None


class TelegramBotClient:
    """The real Bot API over HTTP: ``getUpdates``, ``setWebhook``, ``deleteWebhook``."""

    def __init__(self, token: str, base_url: str = DEFAULT_API_BASE_URL, *,
                 timeout: float = 30.0, retries: int = 5, backoff: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep):
        if not token:
            raise ValueError("a Telegram bot token is required (TELEGRAM_BOT_TOKEN)")
        self._token = Secret(token)
        self._base_url = base_url.rstrip("/")
        self._session = build_session(retries=retries, backoff=backoff, timeout=timeout)
        self._sleep = sleep

    def _call_raw(self, method: str, payload: dict[str, Any], *, read_timeout: float = 0) -> bytes:
        url = f"{self._base_url}/bot{self._token.reveal()}/{method}"
        kwargs: dict[str, Any] = {"json": payload}
        if read_timeout:
            kwargs["timeout"] = (10, read_timeout + 10)  # long polling holds the answer
        response = send(self._session, "POST", url, what=f"Telegram {method}",
                        wait_for=telegram_retry_after,
                        sleep=self._sleep, **kwargs)
        body = response.content
        try:
            ok = json.loads(body).get("ok")
        except (ValueError, AttributeError):
            ok = None
        if ok is not True:
            # Redacted before it is cut: an answer may echo the request, token included.
            text = redact(body.decode("utf-8", errors="replace"))[:200]
            raise ApiError(f"Telegram {method} failed: the answer is not ok: {text!r}")
        return body

    def get_updates_raw(self, offset: int | None = None, limit: int = 100, timeout: int = 0,
                        allowed_updates: list[str] | None = None) -> bytes:
        """The ``getUpdates`` answer exactly as received (bytes), for the landing zone.

        Passing ``offset`` confirms every update below it: call it only once the previous
        batch is durably landed.
        """
        payload: dict[str, Any] = {"limit": limit, "timeout": timeout}
        if offset is not None:
            payload["offset"] = offset
        if allowed_updates is not None:
            payload["allowed_updates"] = allowed_updates
        try:
            return self._call_raw("getUpdates", payload, read_timeout=timeout)
        except ApiError as exc:
            if exc.status == 409:
                raise ApiError(f"{exc} (a webhook is set: polling and a webhook exclude each "
                               "other; run `lakehouse telegram delete-webhook` to poll)",
                               status=409) from None
            raise

    def set_webhook(self, url: str, secret_token: str | None,
                    allowed_updates: Sequence[str] = tuple(ALLOWED_UPDATES)) -> dict[str, Any]:
        payload: dict[str, Any] = {"url": url, "allowed_updates": list(allowed_updates)}
        register(secret_token)
        if secret_token:
            payload["secret_token"] = secret_token
        return json.loads(self._call_raw("setWebhook", payload))

    def delete_webhook(self, drop_pending_updates: bool = False) -> dict[str, Any]:
        return json.loads(self._call_raw("deleteWebhook",
                                         {"drop_pending_updates": drop_pending_updates}))


def parse_chat_ids(text: str | None) -> frozenset[int]:
    """``TELEGRAM_CHAT_IDS``: comma-separated chat ids; empty means every chat."""
    return frozenset(int(part) for part in (text or "").replace(" ", "").split(",") if part)


# The resource's fields and the variables that set them (``lakehouse.settings.env_fields``).
TELEGRAM_ENV = {"bot_token": "TELEGRAM_BOT_TOKEN", "api_base_url": "TELEGRAM_API_BASE_URL",
                "chat_ids": "TELEGRAM_CHAT_IDS"}


class TelegramResource(dg.ConfigurableResource):
    """Where updates come from: the Bot API when a token is set, else the sample group chat.

    The code location sets the fields from ``TELEGRAM_ENV``'s variables as ``dg.EnvVar``, so the
    token never sits in run config and the UI shows the variable, never the value.
    """

    bot_token: str | None = Field(default=None, repr=False, description="TELEGRAM_BOT_TOKEN; "
                                  "unset: the sample chat.")
    api_base_url: str | None = Field(default=None, description="TELEGRAM_API_BASE_URL.")
    chat_ids: str | None = Field(default=None, description="TELEGRAM_CHAT_IDS: allow-list of "
                                 "chat ids; unset: every chat.")
    sample_days: int = Field(default=7, description="Days of sample chat without a token.")
    max_batches_per_run: int = Field(default=200, description="getUpdates calls per poll run.")

    def _token(self) -> str | None:
        token = self.bot_token or None
        register(token)
        return token

    @property
    def is_sample(self) -> bool:
        return self._token() is None

    def allowed_chat_ids(self) -> frozenset[int]:
        return parse_chat_ids(self.chat_ids)

    def client(self) -> TelegramBotClient:
        base = self.api_base_url or DEFAULT_API_BASE_URL
        return TelegramBotClient(self._token() or "", base)

    def updates_source(self) -> UpdatesSource:
        if self.is_sample:
            return SampleTelegramBot(SampleChat(days=self.sample_days))
        return self.client()
