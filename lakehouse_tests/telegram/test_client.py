"""The real Bot API client against a local HTTP server answering in the Bot API's format."""

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from lakehouse.lake.location import Lake
from lakehouse.sources.http import ApiError
from lakehouse.sources.telegram import TelegramBotClient
from lakehouse.sources.telegram_landing import GETUPDATES_PREFIX, poll_updates
from lakehouse_tests.conftest import FIXTURES

TOKEN = "123456789:AAHsecret-token-value_xyz"
PATH = f"/bot{TOKEN}/getUpdates"


def _updates() -> list[dict]:
    return json.loads((FIXTURES / "telegram/getupdates_answer.json").read_text())["result"]


def _client_logs(caplog: pytest.LogCaptureFixture) -> str:
    """What our side logged (the test server's own werkzeug access log is not ours)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))


def _client(server: HTTPServer, sleeps: list[float] | None = None) -> TelegramBotClient:
    recorder = sleeps.append if sleeps is not None else (lambda _s: None)
    return TelegramBotClient(TOKEN, server.url_for("/").rstrip("/"), backoff=0.01,
                             sleep=recorder)


class FakeBotApi:
    """getUpdates semantics: updates below ``offset`` are confirmed and never sent again."""

    def __init__(self, updates: list[dict], limit: int = 8):
        self.pending = list(updates)
        self.limit = limit
        self.offsets: list[int | None] = []

    def __call__(self, request: Request) -> Response:
        payload = request.get_json()
        offset = payload.get("offset")
        self.offsets.append(offset)
        if offset is not None:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        batch = self.pending[: min(self.limit, payload.get("limit", 100))]
        return Response(json.dumps({"ok": True, "result": batch}), content_type="application/json")


def test_polling_lands_every_batch_and_moves_the_offset(httpserver: HTTPServer, lake: Lake) -> None:
    api = FakeBotApi(_updates(), limit=8)
    httpserver.expect_request(PATH, method="POST").respond_with_handler(api)
    result = poll_updates(_client(httpserver), lake)
    ids = [u["update_id"] for u in _updates()]
    assert result.updates == 20 and len(result.keys) == 3
    assert api.offsets[0] is None
    assert api.offsets[1:] == [ids[7] + 1, ids[15] + 1, ids[19] + 1]  # last one confirms all
    landed = [u for key in lake.list_keys(GETUPDATES_PREFIX)
              for u in json.loads(lake.read_bytes(key))["result"]]
    assert [u["update_id"] for u in landed] == ids


def test_the_next_poll_continues_from_the_landed_offset(httpserver: HTTPServer, lake: Lake) -> None:
    api = FakeBotApi(_updates(), limit=100)
    httpserver.expect_request(PATH, method="POST").respond_with_handler(api)
    poll_updates(_client(httpserver), lake)
    api.offsets.clear()
    second = poll_updates(_client(httpserver), lake)
    assert second.updates == 0 and second.keys == []
    assert api.offsets == [_updates()[-1]["update_id"] + 1]


def test_an_offset_older_than_a_week_is_not_trusted(httpserver: HTTPServer, lake: Lake) -> None:
    api = FakeBotApi(_updates()[:2], limit=100)
    httpserver.expect_request(PATH, method="POST").respond_with_handler(api)
    long_ago = datetime.now(UTC) - timedelta(days=8)
    poll_updates(_client(httpserver), lake, clock=lambda: long_ago)
    api.offsets.clear()
    poll_updates(_client(httpserver), lake)
    assert api.offsets[0] is None  # update_id may have restarted: ask without an offset


def test_429_waits_retry_after_from_the_body(httpserver: HTTPServer) -> None:
    too_many = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3}}
    httpserver.expect_ordered_request(PATH).respond_with_json(too_many, status=429)
    httpserver.expect_ordered_request(PATH).respond_with_json({"ok": True, "result": []})
    sleeps: list[float] = []
    body = _client(httpserver, sleeps).get_updates_raw(offset=5)
    assert json.loads(body) == {"ok": True, "result": []}
    assert sleeps == [3.0]


def test_server_errors_are_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(PATH).respond_with_data("bad gateway", status=502)
    httpserver.expect_ordered_request(PATH).respond_with_data("unavailable", status=503)
    httpserver.expect_ordered_request(PATH).respond_with_json({"ok": True, "result": []})
    assert json.loads(_client(httpserver).get_updates_raw()) == {"ok": True, "result": []}
    assert len(httpserver.log) == 3


def test_401_fails_with_a_clear_error_and_no_token(httpserver: HTTPServer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_request(PATH).respond_with_json(
        {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ApiError) as failure:
        _client(httpserver).get_updates_raw()
    message = str(failure.value)
    assert "Telegram getUpdates failed" in message and "401" in message
    assert "[REDACTED]" in message
    assert TOKEN not in message and TOKEN.split(":")[1] not in message
    assert TOKEN not in _client_logs(caplog)


def test_retry_logs_never_show_the_token(httpserver: HTTPServer,
                                        caplog: pytest.LogCaptureFixture) -> None:
    httpserver.expect_ordered_request(PATH).respond_with_data("oops", status=500)
    httpserver.expect_ordered_request(PATH).respond_with_json({"ok": True, "result": []})
    caplog.set_level(logging.DEBUG)
    _client(httpserver).get_updates_raw()
    assert "getUpdates" in _client_logs(caplog)  # urllib3 did log the retried URL...
    assert TOKEN not in _client_logs(caplog)  # ...without the token


def test_409_explains_that_a_webhook_is_set(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(
        {"ok": False, "error_code": 409,
         "description": "Conflict: can't use getUpdates method while webhook is active"},
        status=409)
    with pytest.raises(ApiError, match="delete-webhook"):
        _client(httpserver).get_updates_raw()


def test_set_webhook_sends_the_secret_and_allowed_updates(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"/bot{TOKEN}/setWebhook", method="POST").respond_with_json(
        {"ok": True, "result": True, "description": "Webhook was set"})
    answer = _client(httpserver).set_webhook("https://example.org/hook", "s3cr3t")
    assert answer["description"] == "Webhook was set"
    sent = httpserver.log[0][0].get_json()
    assert sent["url"] == "https://example.org/hook" and sent["secret_token"] == "s3cr3t"
    assert "message" in sent["allowed_updates"] and "edited_message" in sent["allowed_updates"]


def _poll_sensor_tick(server: HTTPServer, monkeypatch: pytest.MonkeyPatch, instance=None):
    import dagster as dg

    from lakehouse.defs.telegram.sensors import telegram_poll_sensor
    from lakehouse.lake.resource import LakeResource
    from lakehouse.sources.telegram import TelegramResource

    telegram = TelegramResource(bot_token=TOKEN, api_base_url=server.url_for("/").rstrip("/"))
    context = dg.build_sensor_context(
        instance=instance or dg.DagsterInstance.ephemeral(),
        resources={"lake": LakeResource(), "telegram": telegram})
    return telegram_poll_sensor(context)


def test_poll_sensor_asks_for_a_run_only_when_updates_wait(
        httpserver: HTTPServer, lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeBotApi(_updates(), limit=8)
    httpserver.expect_request(PATH, method="POST").respond_with_handler(api)
    first = _poll_sensor_tick(httpserver, monkeypatch)
    ids = [u["update_id"] for u in _updates()]
    assert len(first.run_requests) == 1
    assert first.run_requests[0].run_key.startswith(f"telegram-poll-{ids[0]}-")
    assert len(api.pending) == 20  # the peek confirmed nothing

    poll_updates(_client(httpserver), lake)  # the run lands everything
    idle = _poll_sensor_tick(httpserver, monkeypatch)
    assert not getattr(idle, "run_requests", None)
    assert "no pending updates" in idle.skip_message
    # the peek asked with the landed offset: it confirms only what is in the landing zone
    assert api.offsets[-1] == ids[-1] + 1


def test_poll_sensor_waits_while_a_poll_run_is_running(
        httpserver: HTTPServer, lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    from lakehouse.defs.telegram.jobs import telegram_poll_job

    api = FakeBotApi(_updates(), limit=8)
    httpserver.expect_request(PATH, method="POST").respond_with_handler(api)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_run(dg.DagsterRun(job_name=telegram_poll_job.name, run_id="running-poll",
                                   status=dg.DagsterRunStatus.STARTED))
    tick = _poll_sensor_tick(httpserver, monkeypatch, instance)
    assert "already queued" in tick.skip_message
    assert api.offsets == []  # not even a peek
