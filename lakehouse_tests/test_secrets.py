"""Secrets never leave the process.

Fake Telegram, Twitter and TMDB APIs answer every call with an error that echoes the credentials
they received in every shape an API uses (raw, URL-encoded, JSON-escaped, base64, the request
URL and headers reflected). The real code paths run against them: Dagster materializations on a
real instance in a temporary DAGSTER_HOME (in process and through ``dagster asset materialize``)
and the ``lakehouse`` CLI as a subprocess. Then the lake, every file of the Dagster home (SQLite
databases and compute logs included) and all captured output are searched for every secret in
raw, URL-encoded, JSON-escaped and base64 forms.
"""

import base64
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from lakehouse.defs.movies.assets import tmdb_raw
from lakehouse.defs.telegram.assets import telegram_raw_getupdates
from lakehouse.defs.twitter.assets import twitter_raw_search
from lakehouse.lake.location import Lake
from lakehouse.lake.resource import LakeResource
from lakehouse.secrets import REDACTED, Secret, redact, redact_metadata
from lakehouse.settings import env_fields
from lakehouse.sources.http import ApiError
from lakehouse.sources.telegram import TELEGRAM_ENV, TelegramBotClient, TelegramResource
from lakehouse.sources.tmdb import TMDB_ENV, TmdbResource
from lakehouse.sources.twitter import TWITTER_ENV, TwitterResource

ROOT = Path(__file__).resolve().parents[1]
# Characters that URL-encode in each, so encoded forms differ from the raw ones.
SECRETS = {
    "TELEGRAM_BOT_TOKEN": "123456:AB-c/d+e=tg",
    "TELEGRAM_WEBHOOK_SECRET": "wh-S3cr/t+x=&y",
    "TWITTER_BEARER_TOKEN": "AAAA0%2BuSe/id+tw=x",
    "TMDB_API_KEY": "tmdb:k3y/+=&0123",
    "AWS_ACCESS_KEY_ID": "AKIA/EXAMPLE+KEY=",
    "AWS_SECRET_ACCESS_KEY": "wJalr/XUtnFEMI+K7MDENG=bPxRfiCY",
    "AWS_SESSION_TOKEN": "FwoGZX/Ivb3+session=token",
}


def forms(secret: str) -> dict[str, bytes]:
    """The shapes a leaked secret would take in a file or an output."""
    raw = secret.encode()
    found = {
        "raw": raw,
        "quote": quote(secret).encode(),
        "quote-all": quote(secret, safe="").encode(),
        "quote_plus": quote_plus(secret).encode(),
        "json-escaped": secret.replace("/", "\\/").encode(),
        "base64": base64.b64encode(raw),
        "base64-url": base64.urlsafe_b64encode(raw),
    }
    found |= {f"{k}-unpadded": v.rstrip(b"=") for k, v in list(found.items())
              if k.startswith("base64")}
    return found


def leaks(data: bytes) -> list[str]:
    return [f"{name} ({form})" for name, secret in SECRETS.items()
            for form, shape in forms(secret).items() if shape in data]


def leaks_in_tree(folder: Path) -> dict[str, list[str]]:
    found = {}
    for path in folder.rglob("*"):
        if path.is_file() and (hits := leaks(path.read_bytes())):
            found[str(path.relative_to(folder))] = hits
    return found


class EchoApi:
    """Every call fails with an answer echoing the credentials it got, in every shape.

    ``status`` 200 answers ``{"ok": false, ...}`` (the Bot API's way); other statuses answer
    each API's own error body. The echo also goes in a response header.
    """

    def __init__(self) -> None:
        self.status = 401
        self.calls = 0

    @staticmethod
    def credentials(request: Request) -> list[str]:
        found = []
        if request.path.startswith("/bot"):
            found.append(request.path[len("/bot"):request.path.rindex("/")])
        if auth := request.headers.get("Authorization"):
            found.append(auth.removeprefix("Bearer "))
        if key := request.args.get("api_key"):
            found.append(key)
        body = request.get_json(silent=True) or {}
        if isinstance(body, dict) and body.get("secret_token"):
            found.append(body["secret_token"])
        return found

    def __call__(self, request: Request) -> Response:
        self.calls += 1
        echo = " ".join(
            f"got {c} / {quote(c, safe='')} / {quote_plus(c)} / {base64.b64encode(c.encode()).decode()}"
            for c in self.credentials(request))
        echo += f"; url {request.url}; headers {dict(request.headers)}; body {request.get_data(as_text=True)}"
        if request.path.startswith("/bot"):
            answer = {"ok": False, "error_code": self.status if self.status != 200 else 400,
                      "description": f"Bad Request: {echo}"}
        elif request.path.startswith("/2/"):
            answer = {"title": "Unauthorized", "type": "about:blank", "status": self.status,
                      "detail": echo}
        else:
            answer = {"success": False, "status_code": 7, "status_message": f"Invalid API key: {echo}"}
        # As the Bot API writes JSON: slashes escaped.
        text = json.dumps(answer).replace("/", "\\/")
        return Response(text, status=self.status, content_type="application/json",
                        headers={"X-Echo": quote(echo, safe=" :/")})


@pytest.fixture
def echo_api(httpserver: HTTPServer) -> EchoApi:
    api = EchoApi()
    httpserver.expect_request(re.compile(".*")).respond_with_handler(api)
    return api


@pytest.fixture
def secret_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer,
               lake: Lake) -> Iterator[Path]:
    """Every secret in the environment, every API pointed at the fake, a fresh DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    base = httpserver.url_for("/").rstrip("/")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", base)
    monkeypatch.setenv("TWITTER_API_BASE_URL", base)
    monkeypatch.setenv("TMDB_API_BASE_URL", f"{base}/3")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    yield home


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, cwd=ROOT, env=dict(os.environ), timeout=180)


def test_no_secret_reaches_the_lake_the_dagster_home_or_any_output(
        secret_env: Path, echo_api: EchoApi, lake: Lake, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3's retry lines included
    outputs: list[str] = []
    # As the code location builds them: the settings as dg.EnvVar, resolved when a run starts.
    resources = {"lake": LakeResource(), "telegram": TelegramResource(**env_fields(TELEGRAM_ENV)),
                 "twitter": TwitterResource(max_wait_seconds=0, **env_fields(TWITTER_ENV)),
                 "tmdb": TmdbResource(workers=2, **env_fields(TMDB_ENV))}

    # Dagster runs on a real instance, each failing on an echoing answer.
    with dg.DagsterInstance.get() as instance:
        for status, assets in ((401, [telegram_raw_getupdates]), (403, [twitter_raw_search]),
                               (401, [tmdb_raw]), (404, [tmdb_raw])):
            echo_api.status = status
            result = dg.materialize(assets, instance=instance, resources=resources,
                                    raise_on_error=False)
            assert result.success is (status == 404)  # TMDB keeps a 404 as a record
        records = instance.get_records_for_run(result.run_id).records
        assert records
    # The 404 answers were landed as records (so the lake holds echoes to find)...
    assert lake.list_keys("raw/tmdb/answers/not_found")

    # ...`dagster asset materialize` on getUpdates answering 200 {"ok": false} (the repro)...
    echo_api.status = 200
    dagster = _run([str(Path(sys.executable).parent / "dagster"), "asset", "materialize",
                    "-m", "lakehouse.definitions", "--select", "raw/telegram/getupdates"])
    assert dagster.returncode != 0
    outputs += [dagster.stdout.decode(), dagster.stderr.decode()]
    dagster_err = outputs[-1]

    # ...the CLI's set-webhook on ok:false and on an error status...
    for status in (200, 400):
        echo_api.status = status
        cli = _run([sys.executable, "-m", "lakehouse.cli", "telegram", "set-webhook",
                    "https://example.org/hook"])
        assert cli.returncode == 1
        outputs += [cli.stdout.decode(), cli.stderr.decode()]
        assert "Telegram setWebhook failed" in cli.stdout.decode()

    # ...the stream consumer, refused on every reconnection until SIGTERM...
    echo_api.status, seen = 401, echo_api.calls
    stream = subprocess.Popen(
        [sys.executable, "-m", "lakehouse.cli", "twitter", "stream", "--backoff-max", "0.2",
         "--spool", str(tmp_path / "spool")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 120
        while echo_api.calls < seen + 3 and time.monotonic() < deadline and stream.poll() is None:
            time.sleep(0.1)
        assert echo_api.calls >= seen + 3, "the stream never reached the fake API"
        stream.send_signal(signal.SIGTERM)
        out, err = stream.communicate(timeout=60)
    finally:
        if stream.poll() is None:
            stream.kill()
            stream.wait()
    outputs += [out.decode(), err.decode()]

    # ...and 5xx answers (retried, then failed) from the clients themselves.
    echo_api.status = 500
    client = TelegramBotClient(SECRETS["TELEGRAM_BOT_TOKEN"], os.environ["TELEGRAM_API_BASE_URL"],
                               backoff=0.001, retries=2)
    for call in (client.get_updates_raw,
                 lambda: client.set_webhook("https://example.org/hook",
                                            SECRETS["TELEGRAM_WEBHOOK_SECRET"])):
        with pytest.raises(ApiError) as failure:
            call()
        outputs.append(str(failure.value))
        assert "HTTP 500" in str(failure.value)

    assert echo_api.calls >= 10
    captured = capfd.readouterr()
    outputs += [captured.out, captured.err]
    outputs += [r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug")]
    outputs += [logging.Formatter().formatException(r.exc_info) for r in caplog.records
                if r.exc_info]
    assert any("urllib3" in r.name for r in caplog.records)  # retries were logged...
    assert leaks("\n".join(outputs).encode()) == []  # ...like everything else, redacted
    assert leaks_in_tree(Path(lake.root)) == {}
    compute_logs = [p for p in secret_env.rglob("*") if p.suffix in (".out", ".err")]
    assert any(REDACTED.encode() in p.read_bytes() for p in compute_logs)  # errors were there
    assert leaks_in_tree(secret_env) == {}
    # The errors still say what failed, with the secret's place marked.
    assert "Telegram getUpdates failed" in dagster_err and REDACTED in dagster_err
    assert "Twitter stream failed" in err.decode() and REDACTED in err.decode()
    assert REDACTED.encode() in b"".join(p.read_bytes() for p in secret_env.rglob("*.db"))


def test_reprs_never_hold_a_secret() -> None:
    options = {"AWS_ACCESS_KEY_ID": SECRETS["AWS_ACCESS_KEY_ID"],
               "AWS_SECRET_ACCESS_KEY": SECRETS["AWS_SECRET_ACCESS_KEY"],
               "AWS_SESSION_TOKEN": SECRETS["AWS_SESSION_TOKEN"], "AWS_REGION": "eu-west-1"}
    lake = Lake("s3://bucket/lakehouse", options)
    shown = [repr(lake), str(lake), repr(Secret(SECRETS["TMDB_API_KEY"])),
             repr(TelegramResource(bot_token=SECRETS["TELEGRAM_BOT_TOKEN"])),
             repr(TwitterResource(bearer_token=SECRETS["TWITTER_BEARER_TOKEN"])),
             repr(TmdbResource(api_key=SECRETS["TMDB_API_KEY"]))]
    assert leaks("\n".join(shown).encode()) == []
    assert "s3://bucket/lakehouse" in repr(lake) and "eu-west-1" in repr(lake)
    assert lake.storage_options == options  # what delta-rs gets is unchanged


def test_redaction_covers_every_encoding_of_a_registered_secret() -> None:
    secret = "q:9/ä+z= x\\y\"z"
    Secret(secret)
    shapes = [secret, quote(secret), quote(secret, safe=""), quote_plus(secret),
              quote(secret).lower(), quote(quote(secret, safe=""), safe=""),
              json.dumps(secret), json.dumps(secret).replace("/", "\\/"),
              json.dumps(secret, ensure_ascii=False), repr(secret),
              base64.b64encode(secret.encode()).decode(),
              base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")]
    for shape in shapes:
        cleaned = redact(f"before {shape} after")
        assert cleaned.startswith("before ") and cleaned.endswith(" after"), shape
        assert REDACTED in cleaned and "ä+z" not in cleaned and "%2B" not in cleaned.upper(), shape
    assert redact("nothing secret here: 123456") == "nothing secret here: 123456"


def test_metadata_keeps_its_types_and_loses_its_secrets() -> None:
    token = SECRETS["TWITTER_BEARER_TOKEN"]
    Secret(token)
    cleaned = redact_metadata({
        "n": 3, "note": f"echo {quote(token)}",
        "preview": dg.MetadataValue.md(f"| t |\n| --- |\n| {token} |"),
        "answer": dg.MetadataValue.json({"detail": [token, 1]}),
        "link": dg.MetadataValue.url(f"https://example.org/?t={quote_plus(token)}"),
    })
    assert cleaned["n"] == 3 and isinstance(cleaned["preview"], dg.MarkdownMetadataValue)
    assert cleaned["answer"].data == {"detail": [REDACTED, 1]}
    assert leaks(repr(cleaned).encode()) == [] and REDACTED in cleaned["link"].url
