"""The HTTP plumbing every API client shares.

- A ``requests`` session whose ``HTTPAdapter`` retries connection errors and 5xx answers with
  exponential backoff (urllib3 ``Retry``), and a default timeout on every call.
- ``send``: one call with the API's own rate-limit answer honoured (each API says "wait" its
  own way: Telegram in the JSON body, Twitter in ``x-rate-limit-reset``, TMDB in ``Retry-After``),
  then a clear ``ApiError`` naming the call. ``ApiError`` redacts its own message
  (``lakehouse.secrets``), so no error of a client carries a secret, however it was built.
- ``RateLimiter``: a token bucket shared by the threads of one client; a 429 pauses them all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from email.utils import parsedate_to_datetime

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from lakehouse.secrets import redact, register

SERVER_ERRORS = (500, 502, 503, 504)


class ApiError(RuntimeError):
    """A call to an outside API failed for good. The message never carries a secret."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(redact(message))
        self.status = status


class _TimeoutAdapter(HTTPAdapter):
    def __init__(self, timeout: float, **kwargs):
        self._timeout = timeout
        super().__init__(**kwargs)

    def send(self, request, **kwargs):  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def build_session(*, retries: int = 5, backoff: float = 0.5, timeout: float = 30.0,
                  pool_size: int = 10, user_agent: str = "lakehouse/0.1") -> requests.Session:
    """A session that retries transport errors and 5xx with exponential backoff.

    Rate-limit answers (429) are not retried here: ``send`` reads how long each API asks to wait.
    """
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        backoff_max=60,
        status_forcelist=SERVER_ERRORS,
        allowed_methods=None,  # POST to the Bot API is idempotent given an offset
        # 429 and its Retry-After are handled by `send` (each API says "wait" its own way);
        # urllib3 would otherwise sleep on the header itself, past our limits and hooks.
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = _TimeoutAdapter(timeout, max_retries=retry, pool_connections=pool_size,
                              pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


def retry_after_seconds(response: requests.Response) -> float | None:
    """Seconds asked by a standard ``Retry-After`` header (delta-seconds or HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class RateLimiter:
    """A token bucket shared by the threads of one client: ``per_second`` calls a second on
    average, at most ``burst`` at once (GCRA: one "theoretical arrival time" under a lock).

    ``pause`` stops every thread for a while: when the API answers 429 to one worker, the whole
    pool waits as asked instead of each thread finding out by itself.
    """

    def __init__(self, per_second: float | None, burst: int = 1,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._interval = 1.0 / per_second if per_second else 0.0
        self._burst = max(1, burst)
        self._lock = threading.Lock()
        self._tat = 0.0  # when the bucket is next empty of reservations
        self._paused_until = 0.0
        self._clock = clock
        self._sleep = sleep

    def wait(self) -> None:
        if not self._interval:
            return
        while True:
            with self._lock:
                now = self._clock()
                tat = max(self._tat, now)
                slot = max(now, tat - (self._burst - 1) * self._interval)
                self._tat = tat + self._interval
            if slot > now:
                self._sleep(slot - now)
            with self._lock:
                # A pause that began while this thread slept covers its slot: queue again.
                if self._paused_until <= slot:
                    return

    def pause(self, seconds: float) -> None:
        """No call from any thread before ``seconds`` from now (a 429's Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._tat = max(self._tat, self._paused_until + (self._burst - 1) * self._interval)


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    secrets: Iterable[str | None] = (),
    wait_for: Callable[[requests.Response], float | None] = retry_after_seconds,
    rate_limit_attempts: int = 5,
    max_wait: float = 900.0,
    limiter: RateLimiter | None = None,
    ok_statuses: Iterable[int] = (),
    sleep: Callable[[float], None] = time.sleep,
    **kwargs,
) -> requests.Response:
    """Send one request; on 429 wait as the API asks (up to ``max_wait``) and try again.

    Raises ``ApiError`` naming ``what`` and the redacted URL when the call fails for good.
    Statuses in ``ok_statuses`` (for example 404 for an unknown id) are returned, not raised.
    """
    register(*secrets)
    ok = set(ok_statuses)
    for attempt in range(1, rate_limit_attempts + 1):
        if limiter:
            limiter.wait()
        try:
            response = session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise ApiError(f"{what} failed: {method} {url}: {type(exc).__name__}: {exc}") from None
        if response.status_code == 429 and attempt < rate_limit_attempts:
            delay = wait_for(response)
            delay = 1.0 * 2 ** (attempt - 1) if delay is None else delay
            if delay <= max_wait:
                if limiter:
                    limiter.pause(delay)  # the other threads wait too
                sleep(delay)
                continue
        if response.ok or response.status_code in ok:
            return response
        # Redacted before it is cut, so no part of a secret survives the cut.
        body = redact(response.text)[:300].replace("\n", " ")
        raise ApiError(f"{what} failed: {method} {url} answered HTTP "
                       f"{response.status_code}: {body}", status=response.status_code)
    raise AssertionError("unreachable")
