"""Hostile input through the API: whatever JSON (or bytes) a client sends to posting, editing
and reporting, the answer is a 2xx or a 4xx in the error shape, never a 500, and a published
body never holds markup outside the allow-list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Api
from tests.test_sanitize import assert_safe

HOSTILE_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "hostile"

# Text that stresses decoding and storage: NULs, lone surrogates, controls, bidi, markup.
nasty_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40),
    st.sampled_from(
        [
            "\x00",
            "\ud800",
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "javascript:alert(1)",
            "\u202e",
            "a" * 6000,
            "   ",
            "<a href='data:text/html,x'>x</a>",
        ]
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | nasty_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
bodies = st.one_of(
    st.fixed_dictionaries(
        {"body": json_values},
        optional={"parent_id": json_values, "extra": json_values},
    ),
    st.fixed_dictionaries({"body": nasty_text}, optional={"parent_id": st.integers()}),
    json_values,
)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _check(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        error = response.get_json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)
    elif response.status_code in (200, 201, 202):
        body = response.get_json()
        comment = body.get("comment")
        if comment is not None:
            assert_safe(comment["body_html"])


@FUZZ
@given(payload=bodies)
def test_posting_any_json(reader: Api, article: str, payload) -> None:
    _check(reader.post(f"/articles/{article}/comments", payload))


@FUZZ
@given(raw=st.binary(max_size=200))
def test_posting_any_bytes(reader: Api, article: str, raw: bytes) -> None:
    response = reader.request(
        "POST", f"/articles/{article}/comments", data=raw, content_type="application/json"
    )
    _check(response)


@pytest.fixture
def own_comment(reader: Api, article: str) -> int:
    return reader.comment(article, "A comment to edit and report.").get_json()["comment"]["id"]


@FUZZ
@given(payload=bodies)
def test_editing_any_json(reader: Api, own_comment: int, payload) -> None:
    _check(reader.patch(f"/comments/{own_comment}", payload))


@pytest.fixture
def reporter(signed_in) -> Api:
    return signed_in("Reporter")


@FUZZ
@given(
    payload=st.one_of(
        json_values,
        st.fixed_dictionaries({"rule": json_values}, optional={"note": json_values}),
        st.fixed_dictionaries(
            {"rule": st.sampled_from(["civil", "spam", "nope"])}, optional={"note": nasty_text}
        ),
    )
)
def test_reporting_any_json(reporter: Api, own_comment: int, payload) -> None:
    _check(reporter.post(f"/comments/{own_comment}/reports", payload))


def _payloads() -> list[str]:
    out = []
    for name in ("xss-html5sec.jsonl", "xss-owasp-evasion.jsonl"):
        path = HOSTILE_DIR / name
        if path.exists():
            out += [
                json.loads(line)["payload"]
                for line in path.read_text().splitlines()
                if line.strip()
            ]
    return out


def test_public_xss_corpora_through_the_api(app, signed_in, article: str) -> None:
    """Every payload of both corpora, posted as a reader would, is stored safe."""
    payloads = _payloads()
    if not payloads:
        pytest.skip(f"XSS corpora not found in {HOSTILE_DIR}")
    app.config["DUPLICATE_WINDOW_MINUTES"] = 0
    client = signed_in("Attacker")
    stored = 0
    for payload in payloads:
        response = client.post(f"/articles/{article}/comments", {"body": payload})
        _check(response)
        if response.status_code in (201, 202):
            stored += 1
            comment_id = response.get_json()["comment"]["id"]
            reply = client.post(
                f"/articles/{article}/comments", {"body": f"re: {payload}", "parent_id": comment_id}
            )
            _check(reply)
    assert stored >= len(payloads) * 0.9  # nearly all are plain posts that must be stored
    thread = client.get(f"/articles/{article}/comments?per_page=100").get_json()

    def walk(nodes):
        for node in nodes:
            if node["body_html"] is not None:
                assert_safe(node["body_html"])
            walk(node["replies"])

    walk(thread["comments"])
