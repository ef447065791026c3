"""`lakehouse twitter rules list|add|delete` against a local server answering like
/2/tweets/search/stream/rules (API v2): the real request bodies, the real answer shapes
(``data``, ``meta.summary``, ``errors``), retries through the project's HTTP session."""

import json

import pytest
from pytest_httpserver import HTTPServer

from lakehouse.cli import main

TOKEN = "AAAAAAAAAAAAAAAAAAAAArules-secret-token"
RULES = "/2/tweets/search/stream/rules"
SENT = "2026-11-17T09:00:00.000Z"
FILMS = {"id": "1866916266197536768", "value": "cinema OR filme OR movie OR film", "tag": "films"}
PT = {"id": "1866916266197536769", "value": "(cinema OR filme) lang:pt", "tag": "films in pt"}


@pytest.fixture(autouse=True)
def _api(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWITTER_BEARER_TOKEN", TOKEN)
    monkeypatch.setenv("TWITTER_API_BASE_URL", httpserver.url_for("/").rstrip("/"))


def answer(body: dict) -> str:
    return json.dumps(body)


def bodies(server: HTTPServer) -> list[dict]:
    return [json.loads(req.data) for req, _ in server.log if req.method == "POST"]


def test_list_prints_each_rule_with_its_id_and_tag(httpserver: HTTPServer, capsys) -> None:
    httpserver.expect_request(RULES, method="GET").respond_with_data(
        answer({"data": [FILMS, PT], "meta": {"sent": SENT, "result_count": 2}}),
        content_type="application/json")
    assert main(["twitter", "rules", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{FILMS['id']}\tfilms\t{FILMS['value']}" in out and "2 rule(s)" in out
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_list_of_no_rules(httpserver: HTTPServer, capsys) -> None:
    httpserver.expect_request(RULES, method="GET").respond_with_data(
        answer({"meta": {"sent": SENT, "result_count": 0}}))
    assert main(["twitter", "rules", "list"]) == 0
    assert "0 rule(s)" in capsys.readouterr().out


def test_add_posts_the_rule_and_a_duplicate_is_not_an_error(httpserver: HTTPServer,
                                                            capsys) -> None:
    httpserver.expect_ordered_request(RULES, method="POST").respond_with_data(
        answer({"data": [{"value": FILMS["value"], "tag": "films", "id": FILMS["id"]}],
                "meta": {"sent": SENT, "summary": {"created": 1, "not_created": 0,
                                                   "valid": 1, "invalid": 0}}}))
    httpserver.expect_ordered_request(RULES, method="POST").respond_with_data(
        answer({"meta": {"sent": SENT, "summary": {"created": 0, "not_created": 1,
                                                   "valid": 0, "invalid": 1}},
                "errors": [{"value": FILMS["value"], "id": FILMS["id"], "title": "DuplicateRule",
                            "type": "https://api.twitter.com/2/problems/duplicate-rules"}]}))
    assert main(["twitter", "rules", "add", FILMS["value"], "--tag", "films"]) == 0
    assert FILMS["id"] in capsys.readouterr().out
    assert main(["twitter", "rules", "add", FILMS["value"], "--tag", "films"]) == 0
    assert f"already exists: id {FILMS['id']}" in capsys.readouterr().out
    assert bodies(httpserver) == [{"add": [{"value": FILMS["value"], "tag": "films"}]}] * 2


def test_an_invalid_rule_is_refused_with_the_api_reason(httpserver: HTTPServer, capsys) -> None:
    httpserver.expect_request(RULES, method="POST").respond_with_data(
        answer({"meta": {"sent": SENT, "summary": {"created": 0, "not_created": 1,
                                                   "valid": 0, "invalid": 1}},
                "errors": [{"value": "cinema (", "details": ["Unmatched parenthesis."],
                            "title": "UnprocessableEntity",
                            "type": "https://api.twitter.com/2/problems/invalid-rules"}]}))
    assert main(["twitter", "rules", "add", "cinema (", "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert "refused 'cinema (': UnprocessableEntity: Unmatched parenthesis." in captured.err
    assert "dry run: created 0, not created 1" in captured.out
    [(request, _)] = httpserver.log
    assert request.args["dry_run"] == "true"


def test_delete_by_id_and_an_unknown_id(httpserver: HTTPServer, capsys) -> None:
    httpserver.expect_ordered_request(RULES, method="POST").respond_with_data(
        answer({"meta": {"sent": SENT, "summary": {"deleted": 1, "not_deleted": 0}}}))
    httpserver.expect_ordered_request(RULES, method="POST").respond_with_data(
        answer({"meta": {"sent": SENT, "summary": {"deleted": 0, "not_deleted": 1}},
                "errors": [{"errors": [{"parameters": {}, "message": "Rule does not exist"}],
                            "title": "Invalid Request",
                            "detail": "One or more parameters to your request was invalid.",
                            "type": "https://api.twitter.com/2/problems/invalid-request"}]}))
    assert main(["twitter", "rules", "delete", FILMS["id"]]) == 0
    assert "deleted 1, not deleted 0" in capsys.readouterr().out
    assert main(["twitter", "rules", "delete", "42"]) == 1
    assert "Invalid Request: Rule does not exist" in capsys.readouterr().err
    assert bodies(httpserver) == [{"delete": {"ids": [FILMS["id"]]}}, {"delete": {"ids": ["42"]}}]


def test_delete_all_lists_then_deletes_every_rule(httpserver: HTTPServer, capsys) -> None:
    httpserver.expect_ordered_request(RULES, method="GET").respond_with_data(
        answer({"data": [FILMS, PT], "meta": {"sent": SENT, "result_count": 2}}))
    httpserver.expect_ordered_request(RULES, method="POST").respond_with_data(
        answer({"meta": {"sent": SENT, "summary": {"deleted": 2, "not_deleted": 0}}}))
    assert main(["twitter", "rules", "delete", "--all"]) == 0
    assert bodies(httpserver) == [{"delete": {"ids": [FILMS["id"], PT["id"]]}}]


def test_a_503_is_retried_by_the_session(httpserver: HTTPServer, capsys) -> None:
    httpserver.expect_ordered_request(RULES, method="GET").respond_with_data(
        answer({"title": "Service Unavailable", "status": 503}), status=503)
    httpserver.expect_ordered_request(RULES, method="GET").respond_with_data(
        answer({"data": [PT], "meta": {"sent": SENT, "result_count": 1}}))
    assert main(["twitter", "rules", "list"]) == 0
    assert PT["id"] in capsys.readouterr().out and len(httpserver.log) == 2


def test_a_refused_token_fails_clearly_without_the_token(httpserver: HTTPServer,
                                                         capsys) -> None:
    httpserver.expect_request(RULES).respond_with_data(
        answer({"title": "Unauthorized", "type": "about:blank", "status": 401,
                "detail": "Unauthorized"}), status=401)
    assert main(["twitter", "rules", "list"]) == 1
    captured = capsys.readouterr()
    assert "Twitter stream rules (list)" in captured.err and "401" in captured.err
    assert TOKEN not in captured.out + captured.err


def test_rules_need_a_token(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("TWITTER_BEARER_TOKEN")
    assert main(["twitter", "rules", "list"]) == 2
    assert "TWITTER_BEARER_TOKEN" in capsys.readouterr().err
