"""Abuse limits: posting, reporting, sign-in and sign-up, 429 with Retry-After; the client
address comes only from trusted proxies; repeated posts are refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comments.extensions import db
from comments.models import User, utcnow
from tests.conftest import PASSWORD, Api

LIMITED = {"RATELIMIT_ENABLED": True}
TEXTS = [
    "The new bus station is a big improvement on the old one.",
    "I hope the council keeps the library open on Sundays.",
    "Durham's market hall deserves more visitors than it gets.",
    "Good to see the footpath by the river repaired at last.",
    "Could the paper find out when the bridge works finish?",
]


def _age(app, user_id: int, days: int) -> None:
    with app.app_context():
        db.session.get(User, user_id).created_at = utcnow() - timedelta(days=days)
        db.session.commit()


@pytest.mark.config(**LIMITED, RATELIMIT_POST_USER="3/minute", RATELIMIT_POST_NEW_USER="1/minute")
def test_posting_limit_per_user_stricter_for_new_accounts(app, reader: Api, article: str):
    # a brand-new account: one post a minute
    assert reader.comment(article, TEXTS[0]).status_code == 201
    limited = reader.comment(article, TEXTS[1])
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    # an established account: three
    _age(app, reader.user["id"], 2)
    from comments.limits import limiter

    limiter.reset()
    codes = [reader.comment(article, text).status_code for text in TEXTS[1:5]]
    assert codes == [201, 201, 201, 429]


@pytest.mark.config(**LIMITED, RATELIMIT_POST_USER="50/minute", RATELIMIT_POST_IP="2/minute")
def test_posting_limit_per_address(app, signed_in, article: str) -> None:
    one, two = signed_in("One"), signed_in("Two")
    _age(app, one.user["id"], 2)
    _age(app, two.user["id"], 2)
    assert one.comment(article, TEXTS[0]).status_code == 201
    assert two.comment(article, TEXTS[1]).status_code == 201
    assert one.comment(article, TEXTS[2]).status_code == 429  # same address, third post


@pytest.mark.config(**LIMITED, RATELIMIT_POST_IP="1/minute", RATELIMIT_POST_USER="50/minute")
def test_forwarded_for_is_ignored_without_trusted_proxies(app, reader: Api, article: str):
    _age(app, reader.user["id"], 2)
    assert reader.comment(article, TEXTS[0]).status_code == 201
    spoofed = reader.post(
        f"/articles/{article}/comments",
        {"body": TEXTS[1]},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert spoofed.status_code == 429


@pytest.mark.config(
    **LIMITED, PROXY_FIX_X_FOR=1, RATELIMIT_POST_IP="1/minute", RATELIMIT_POST_USER="50/minute"
)
def test_one_trusted_proxy_gives_the_client_address(app, reader: Api, article: str) -> None:
    _age(app, reader.user["id"], 2)
    first = reader.post(
        f"/articles/{article}/comments",
        {"body": TEXTS[0]},
        headers={"X-Forwarded-For": "198.51.100.1"},
    )
    other = reader.post(
        f"/articles/{article}/comments",
        {"body": TEXTS[1]},
        headers={"X-Forwarded-For": "198.51.100.2"},
    )
    again = reader.post(
        f"/articles/{article}/comments",
        {"body": TEXTS[2]},
        headers={"X-Forwarded-For": "198.51.100.1"},
    )
    assert (first.status_code, other.status_code, again.status_code) == (201, 201, 429)


@pytest.mark.config(
    **LIMITED, RATELIMIT_SIGNIN_ACCOUNT="3/minute", RATELIMIT_SIGNIN_IP="100/minute"
)
def test_signin_attempts_limited_per_account(app, make_user) -> None:
    make_user("Target")
    client = Api(app.test_client())
    codes = [client.signin("target@example.com", "wrong password!").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    # another account from the same address is not locked out
    make_user("Other")
    assert client.signin("other@example.com").status_code == 200


@pytest.mark.config(
    **LIMITED, RATELIMIT_SIGNIN_IP="2/minute", RATELIMIT_SIGNIN_ACCOUNT="100/minute"
)
def test_signin_attempts_limited_per_address(app) -> None:
    client = Api(app.test_client())
    codes = [client.signin(f"nobody{i}@example.com").status_code for i in range(3)]
    assert codes == [401, 401, 429]


@pytest.mark.config(**LIMITED, RATELIMIT_SIGNUP_IP="2/hour")
def test_signup_limited_per_address(app) -> None:
    codes = [
        Api(app.test_client()).signup(f"new{i}@example.com", f"New {i}").status_code
        for i in range(3)
    ]
    assert codes == [201, 201, 429]


@pytest.mark.config(**LIMITED, RATELIMIT_REPORT_USER="2/minute")
def test_reports_limited_per_user(app, reader: Api, signed_in, article: str) -> None:
    ids = [reader.comment(article, text).get_json()["comment"]["id"] for text in TEXTS[:1]]
    others = [signed_in(f"Author{i}") for i in range(2)]
    for i, other in enumerate(others):
        _age(app, other.user["id"], 2)
        ids.append(other.comment(article, TEXTS[i + 1]).get_json()["comment"]["id"])
    reporter = signed_in("Reporter")
    codes = [
        reporter.post(f"/comments/{cid}/reports", {"rule": "civil"}).status_code for cid in ids
    ]
    assert codes == [201, 201, 429]


def test_recent_post_shapes_stay_within_their_memory_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The repeat check keeps recent posts' shapes by weight, not count: long posts push
    the oldest out, a hit is served from the cache, and an evicted text is shaped again
    (the check's answer never depends on what was cached)."""
    from comments import services
    from comments.cache import PageCache

    cache = PageCache(60_000, weigh=services._shape_bytes)
    monkeypatch.setattr(services, "_shapes", cache)
    texts = [f"post {i} " + " ".join(f"w{i}x{j}" for j in range(300)) for i in range(20)]
    first = services._shape(texts[0])
    assert services._shape(texts[0]) is first
    for text in texts[1:]:
        services._shape(text)
        assert 0 < cache.used <= cache.capacity
    assert texts[0] not in cache and texts[-1] in cache
    again = services._shape(texts[0])
    assert again is not first and again.fingerprint == first.fingerprint


def test_repeated_post_is_refused_after_its_shape_left_the_cache(
    reader: Api, article: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comments import services
    from comments.cache import PageCache

    monkeypatch.setattr(services, "_shapes", PageCache(1, weigh=services._shape_bytes))
    text = "The council should publish the full report on the office closure."
    assert reader.comment(article, text).status_code == 201
    again = reader.comment(article, text.upper())
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "duplicate_comment"


def test_repeated_post_is_refused(reader: Api, article: str) -> None:
    text = "The council should publish the full report on the office closure."
    assert reader.comment(article, text).status_code == 201
    again = reader.comment(
        article, "  the council should publish the FULL report on the office closure!! "
    )
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "duplicate_comment"
    near = reader.comment(
        article, "The council should publish the full report on the office closures."
    )
    assert near.status_code == 409
    assert (
        reader.comment(article, "A different thought about the bus timetable.").status_code == 201
    )



_WORDS = ["the", "council", "road", "bus", "plan", "vote", "town", "fair", "cost", "tax"]


def _edited(a: list[str], edits: list[tuple[int, str | None]]) -> list[str]:
    b = list(a)
    for index, word in edits:
        if b:
            if word is None:
                del b[index % len(b)]
            else:
                b[index % len(b)] = word
    return b


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(_WORDS), min_size=0, max_size=40),
    st.lists(st.tuples(st.integers(0, 39), st.sampled_from([*_WORDS, None])), max_size=4),
    st.none() | st.lists(st.sampled_from(_WORDS), max_size=40),
)
def test_near_duplicate_shortcut_never_changes_the_answer(
    a: list[str], edits: list[tuple[int, str | None]], other: list[str] | None
) -> None:
    """The set-size bound in front of difflib only skips pairs difflib would refuse too.
    Small vocabularies make many repeats; light edits of a text make many near-misses."""
    import difflib

    from comments.services import _nearly_same

    b = _edited(a, edits) if other is None else other
    shorter, longer = sorted((len(a), len(b)))
    expected = shorter >= 4 and shorter >= 0.8 * longer
    expected = expected and difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= 0.9
    assert _nearly_same(" ".join(a), " ".join(b)) is expected

def test_wrong_password_and_unknown_email_cost_the_same_work(app, make_user, monkeypatch):
    """No account enumeration by timing: both failures run one argon2 verification."""
    from comments import auth

    calls = []
    original = auth.PasswordHasher.verify

    def counting(self, hash_, password):
        calls.append(hash_)
        return original(self, hash_, password)

    monkeypatch.setattr(auth.PasswordHasher, "verify", counting)
    make_user("Known")
    client = Api(app.test_client())
    client.signin("known@example.com", "wrong password!")
    client.signin("unknown@example.com", PASSWORD)
    assert len(calls) == 2 and all(h.startswith("$argon2") for h in calls)


def _redis_url() -> str:
    import os

    return os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_or_skip():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(_redis_url(), socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {_redis_url()}")
    return client


@pytest.mark.config(
    **LIMITED,
    REDIS_URL=_redis_url(),
    RATELIMIT_POST_USER="1/minute",
    RATELIMIT_POST_NEW_USER="1/minute",
)
def test_counters_live_in_redis_when_configured(app, reader: Api, article: str) -> None:
    """With Redis, every worker and machine shares one count."""
    client = _redis_or_skip()
    pattern = f"*user:{reader.user['id']}/api.post_comment*"
    for key in client.keys(pattern):
        client.delete(key)  # counters left by an earlier run
    assert reader.comment(article, TEXTS[0]).status_code == 201
    keys = client.keys(pattern)
    assert keys, "expected the limiter's counters in Redis"
    assert reader.comment(article, TEXTS[1]).status_code == 429
    for key in keys:
        client.delete(key)


@pytest.mark.config(**LIMITED, RATELIMIT_POST_USER="1/minute", RATELIMIT_POST_NEW_USER="1/minute")
def test_page_forms_share_the_limits(app, reader: Api, article: str) -> None:
    """The reader pages post through the same limits as the API."""
    token = reader.get("/auth/session").get_json()["csrf_token"]
    first = reader.client.post(f"/articles/{article}/comments",
                               data={"csrf_token": token, "body": TEXTS[0]})
    assert first.status_code in (302, 303)
    second = reader.client.post(f"/articles/{article}/comments",
                                data={"csrf_token": token, "body": TEXTS[1]},
                                headers={"Accept": "text/html"})
    assert second.status_code == 429 and "Retry-After" in second.headers
    assert "text/html" in second.content_type
