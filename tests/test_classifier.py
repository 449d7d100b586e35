"""Tests for moderation.classifier (no Flask app, no database).

All sentences here are written for these tests; none comes from the training sets.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import sklearn

from moderation import classifier as clf
from moderation.classifier import SIGNALS, ModelIntegrityError

CIVIL = [
    "Thank you for the reply, that is a fair point about the bus timetable.",
    "I think the council should publish the full budget before the vote.",
    "Lovely photos of the harbour, I walked there on Sunday.",
]
INSULT = "You are a pathetic idiot and a brainless moron, nobody cares what you think."
SPAM = (
    "Buy cheap followers now at www.followers-4-less.example - best prices, "
    "click here and subscribe to my channel for free gift cards!!!"
)


@pytest.fixture(scope="module")
def model():
    return clf.load()


# ----------------------------------------------------------------------------------------
# the shipped model
# ----------------------------------------------------------------------------------------


def test_shipped_model_loads_and_scores_every_signal(model):
    assert clf.default_model_path().is_file()
    assert model.version.startswith("signals-")
    assert model.sklearn_version.split(".")[:2] == sklearn.__version__.split(".")[:2]
    assert set(model.thresholds) == set(SIGNALS) == set(model.reject_thresholds)
    for s in SIGNALS:
        assert 0.0 < model.thresholds[s] <= model.reject_thresholds[s] <= 1.0
    for text in [*CIVIL, INSULT, SPAM, "", "   ", "🙂🙂", "x" * 5000]:
        scores = model.score(text)
        assert list(scores) == list(SIGNALS)
        assert all(0.0 <= v <= 1.0 for v in scores.values())


def test_score_many_matches_score(model):
    texts = [*CIVIL, INSULT, SPAM, ""]
    batch = model.score_many(texts)
    assert len(batch) == len(texts)
    for text, row in zip(texts, batch, strict=True):
        single = model.score(text)
        for s in SIGNALS:
            assert row[s] == pytest.approx(single[s], abs=1e-6)
    assert model.score_many([]) == []


def test_obvious_insult_ranks_above_civil_reply(model):
    insult = model.score(INSULT)["insult"]
    assert insult >= model.thresholds["insult"]
    for text in CIVIL:
        assert insult > model.score(text)["insult"] + 0.3


def test_obvious_spam_ranks_above_civil_comment(model):
    spam = model.score(SPAM)["spam"]
    assert spam >= model.thresholds["spam"]
    for text in CIVIL:
        assert spam > model.score(text)["spam"] + 0.3


def test_obfuscated_insult_still_caught(model):
    plain = model.score("you are an idiot")["insult"]
    variants = [
        "you are an 1d10t",
        "you are an i.d.i.o.t",
        "you are an i d i o t",
        "you are an IDIOOOOT",
        "you are an id\u200biot",
        "you are an ｉｄｉｏｔ",
    ]
    for variant in variants:
        score = model.score(variant)["insult"]
        assert score >= model.thresholds["insult"], variant
        assert score == pytest.approx(plain, abs=0.15), variant


def test_explain_spans_point_into_the_original_text(model):
    text = "Honestly, you are an 1d10t and a m.o.r.o.n!"
    items = model.explain(text, "insult", k=5)
    assert items, "an insult should have terms that pushed the score up"
    assert all(i["signal"] == "insult" and i["weight"] > 0 for i in items)
    weights = [i["weight"] for i in items]
    assert weights == sorted(weights, reverse=True)
    terms = {i["term"]: i for i in items}
    assert "idiot" in terms and "moron" in terms
    assert [text[a:b] for a, b in terms["idiot"]["spans"]] == ["1d10t"]
    assert [text[a:b] for a, b in terms["moron"]["spans"]] == ["m.o.r.o.n"]
    for i in items:
        for a, b in i["spans"]:
            assert 0 <= a < b <= len(text)


def test_explain_all_signals_and_spans_with_unicode(model):
    text = "Ｓｈｕｔ up, you stupid clown 🤡 — visit www.example.com"
    items = model.explain(text, None, k=3)
    assert {i["signal"] for i in items} <= set(SIGNALS)
    assert all(len([i for i in items if i["signal"] == s]) <= 3 for s in SIGNALS)
    for i in items:
        for a, b in i["spans"]:
            assert 0 <= a < b <= len(text)
            assert text[a:b].strip() == text[a:b]
    with pytest.raises(ValueError):
        model.explain(text, "rudeness")


@pytest.mark.parametrize(("template", "word", "neutral"), clf.SCUNTHORPE_CHECKS)
def test_scunthorpe_words_are_not_flagged(model, template, word, neutral):
    clean = model.score(template.format(word))
    base = model.score(template.format(neutral))
    for s in SIGNALS:
        assert clean[s] <= base[s] + 0.02, (s, clean[s], base[s])


def test_scunthorpe_words_are_masked(model):
    fz = model.featurizer
    for w in ["scunthorpe", "penistone", "essex", "sussex", "middlesex", "assess", "class"]:
        assert w in model.lexicon and w in model.protected
        tokens, per_token, bigrams = fz.analyse(f"in {w} today")
        assert per_token[1] == () and bigrams == [None, None]
    # an ordinary known word: its whole-word feature only; an unknown word: n-grams too
    assert len(fz.word_features("garden")) == 1 and "garden" not in model.protected
    assert len(fz.word_features("zorblington")) > 1


# ----------------------------------------------------------------------------------------
# normalisation
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("f.u.c.k", ["fuck"]),
        ("f u c k off", ["fuck", "off"]),
        ("sh1t @nd $tuff", ["shit", "and", "stuff"]),
        ("nooooo waaaay", ["noo", "waay"]),
        ("fu\u200bck\u2060", ["fuck"]),
        ("ＷＯＲＤ", ["word"]),
        ("naïve café", ["naive", "cafe"]),
        ("don't stop", ["dont", "stop"]),
        ("5pm on the 2nd", ["5pm", "on", "the", "2nd"]),
        ("@someone hi", ["_mention_", "hi"]),
        ("see https://x.example/a", ["see", "_url_", "https", "example"]),
    ],
)
def test_tokenize_normalises(text, expected):
    toks = clf.tokenize(text)
    assert [t.text for t in toks] == expected
    for t in toks:
        assert 0 <= t.start < t.end <= len(text)


def test_token_spans_map_back_to_original():
    text = "Ｆｕｃｋ\u200b this, m8 — go h.o.m.e"
    toks = clf.tokenize(text)
    assert [(t.text, text[t.start : t.end]) for t in toks] == [
        ("fuck", "Ｆｕｃｋ"),
        ("this", "this"),
        ("m8", "m8"),
        ("go", "go"),
        ("home", "h.o.m.e"),
    ]


def test_a_repeated_word_gets_its_own_span_each_time():
    """Chunks are tokenised once and cached: the cached tokens must land where each copy is,
    in plain ASCII and after normalisation has moved offsets (a zero-width space, a
    fullwidth letter)."""
    for text in ("idiot, you idiot!! @idiot1 idiot", "ｉdiot,\u200b you idiot!! @idiot1 idiot"):
        for _ in range(2):  # the second pass is served from the cache
            toks = clf.tokenize(text)
            assert [t.text for t in toks] == ["idiot", "you", "idiot", "_mention_", "idiot"]
            spans = [text[t.start : t.end] for t in toks]
            assert spans[1:] == ["you", "idiot", "@idiot1", "idiot"]
            assert spans[0] in ("idiot", "ｉdiot")
            assert toks[2].start < toks[3].start < toks[4].start


# ----------------------------------------------------------------------------------------
# integrity
# ----------------------------------------------------------------------------------------


def _copy_shipped(tmp_path):
    src = clf.default_model_path()
    shutil.copy(src, tmp_path / src.name)
    shutil.copy(src.with_suffix(".npz"), tmp_path / src.with_suffix(".npz").name)
    return tmp_path / src.name


def test_untampered_copy_loads(tmp_path, model):
    loaded = clf.load(_copy_shipped(tmp_path))
    assert loaded.version == model.version
    assert clf.load(tmp_path).version == model.version  # directory form


def test_one_changed_byte_is_refused(tmp_path):
    manifest = _copy_shipped(tmp_path)
    npz = manifest.with_suffix(".npz")
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0x01
    npz.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="checksum"):
        clf.load(manifest)


def test_wrong_sklearn_version_is_refused(tmp_path):
    manifest = _copy_shipped(tmp_path)
    m = json.loads(manifest.read_text())
    m["sklearn_version"] = "0.0.1"
    m["manifest_sha256"] = clf._manifest_body_digest(m)  # a consistent, re-signed manifest
    manifest.write_text(json.dumps(m))
    with pytest.raises(ModelIntegrityError, match="scikit-learn"):
        clf.load(manifest)


def test_edited_threshold_is_refused(tmp_path):
    manifest = _copy_shipped(tmp_path)
    m = json.loads(manifest.read_text())
    m["thresholds"]["insult"] = 0.99
    manifest.write_text(json.dumps(m))
    with pytest.raises(ModelIntegrityError):
        clf.load(manifest)


def test_missing_files_are_refused(tmp_path):
    with pytest.raises(ModelIntegrityError):
        clf.load(tmp_path / "nothing.json")
    manifest = _copy_shipped(tmp_path)
    manifest.with_suffix(".npz").unlink()
    with pytest.raises(ModelIntegrityError):
        clf.load(manifest)


def test_npz_has_no_pickles():
    with np.load(clf.default_model_path().with_suffix(".npz"), allow_pickle=False) as z:
        assert {"indices", "weights", "intercepts", "lexicon", "protected"} <= set(z.files)
        assert all(z[k].dtype != object for k in z.files)


# ----------------------------------------------------------------------------------------
# training on tiny files and fine-tuning
# ----------------------------------------------------------------------------------------

TINY_CIVIL = [
    "thanks for the article about the new bridge",
    "i agree with the council on the parking plan",
    "the weather in the park was lovely today",
    "great reporting as always from the local team",
    "what time does the match start on saturday",
    "i read this on the train this morning",
    "the new library opens next week in town",
    "my garden is full of roses and tulips",
    "the school play was a real success",
    "can anyone recommend a good bakery nearby",
]
TINY_POSITIVE = {
    "insult": ["you are a stupid idiot", "what a pathetic moron you are",
               "shut up you clueless clown", "you absolute buffoon"],
    "offensive": ["this is crap and damn awful", "what the hell is this rubbish",
                  "bloody useless garbage", "total crap from start to finish"],
    "hate": ["those people are vermin and should leave", "they are subhuman filth",
             "that whole group are parasites", "they are animals and should go back"],
    "spam": ["buy cheap followers now at www.cheapfollowers.example",
             "click here for free money http://spam.example",
             "best prices on replica watches visit my site", "subscribe to my channel for prizes"],
    "legal_advice": ["you should sue them in small claims court",
                     "talk to a solicitor about your tenancy rights",
                     "you can claim unfair dismissal at a tribunal",
                     "file a claim against your landlord for the deposit"],
}  # fmt: skip
SMALL_WORDLIST = {w for t in TINY_CIVIL for w in t.split()} | {"bridge", "zorb"}


def write_tiny_csvs(directory):
    directory.mkdir(parents=True, exist_ok=True)
    for signal, positives in TINY_POSITIVE.items():
        path = directory / f"{signal.replace('_', '-')}-tiny-train.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            for t in TINY_CIVIL:
                w.writerow([t, 0])
            for t in positives:
                w.writerow([t, 1])
    return directory


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_csvs(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def tiny_model(tiny_dir):
    return clf.train([tiny_dir], seed=3, wordlist=SMALL_WORDLIST, n_splits=3)


def test_train_is_deterministic_and_loadable(tiny_dir, tiny_model, tmp_path):
    lines = []
    again = clf.train([tiny_dir], seed=3, wordlist=SMALL_WORDLIST, n_splits=3,
                      progress=lines.append)  # fmt: skip
    assert lines and any("fold" in line for line in lines)
    np.testing.assert_array_equal(tiny_model.indices, again.indices)
    np.testing.assert_array_equal(tiny_model.weights, again.weights)
    np.testing.assert_array_equal(tiny_model.intercepts, again.intercepts)
    assert tiny_model.thresholds == again.thresholds
    assert tiny_model.version == again.version
    sha1 = clf.save(tiny_model, tmp_path / "a" / "signals.json")
    sha2 = clf.save(again, tmp_path / "b")
    assert sha1 == sha2  # byte-identical files
    loaded = clf.load(tmp_path / "a" / "signals.json")
    assert loaded.version == tiny_model.version
    text = "you are a stupid clown"
    assert loaded.score(text) == pytest.approx(tiny_model.score(text), abs=1e-9)
    assert loaded.score(text)["insult"] > loaded.score(TINY_CIVIL[0])["insult"]


def test_train_files_and_errors(tiny_dir, tmp_path):
    one = tiny_dir / "insult-tiny-train.csv"
    with pytest.raises(ValueError, match="no training data"):
        clf.train([one], wordlist=SMALL_WORDLIST)
    bad = tmp_path / "insult-bad-train.csv"
    bad.write_text("text,label\nhello,2\n")
    with pytest.raises(ValueError, match="label"):
        clf.read_labelled_csv(bad)
    assert clf.signal_from_filename("legal-advice-reddit-rules-train.csv") == "legal_advice"
    assert clf.signal_from_filename("hate-davidson-train.csv") == "hate"
    assert clf.signal_from_filename("notes.csv") is None


def test_hand_written_scorer_matches_the_fitted_weights(tiny_model):
    texts = ["you are a stupid idiot", "the weather in the park", "buy followers at www.x.example"]
    X = tiny_model.featurizer.transform(texts)
    for j, s in enumerate(SIGNALS):
        w = tiny_model.dense_weights(s)
        expected = 1 / (1 + np.exp(-(X @ w + tiny_model.intercepts[j])))
        got = [tiny_model.score(t)[s] for t in texts]
        np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_choose_thresholds_respects_hold_rate():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(900, int), np.ones(100, int)]
    p = np.r_[rng.uniform(0, 0.6, 900), rng.uniform(0.4, 1.0, 100)]
    t, r = clf.choose_thresholds(y, p, max_hold_rate=0.05, reject_precision=0.95)
    assert np.mean(p[y == 0] >= t) <= 0.05
    assert r >= t
    pred = p >= r
    assert pred.sum() and y[pred].mean() >= 0.95


def test_choose_thresholds_caps_every_source():
    rng = np.random.default_rng(1)
    # source 1's civil texts score high (like civil tweets about a targeted group)
    y = np.r_[np.zeros(900, int), np.ones(100, int), np.zeros(300, int), np.ones(100, int)]
    g = np.r_[np.zeros(1000, int), np.ones(400, int)]
    p = np.r_[rng.uniform(0, 0.5, 900), rng.uniform(0.3, 1, 100),
              rng.uniform(0.2, 0.8, 300), rng.uniform(0.4, 1, 100)]  # fmt: skip
    pooled, _ = clf.choose_thresholds(y, p, max_hold_rate=0.05, max_source_hold_rate=0.05)
    capped, r = clf.choose_thresholds(y, p, groups=g, max_hold_rate=0.05,
                                      max_source_hold_rate=0.05)  # fmt: skip
    assert capped >= pooled
    for src in (0, 1):
        civil = p[(g == src) & (y == 0)]
        assert np.mean(civil >= capped) <= 0.05
    assert r >= capped
    points = clf.operating_points(y, p, g, hold_rates=(0.02, 0.10))
    assert [pt["max_hold_rate"] for pt in points] == [0.02, 0.10]
    assert points[0]["recall"] <= points[1]["recall"]
    assert all(pt["hold_rate_civil"] <= pt["max_hold_rate"] for pt in points)


def test_fine_tune_raises_scores_of_similar_texts(model):
    site = [
        ("Get rich fast with the goldfinch coin presale, join our telegram", "spam", 1),
        ("The goldfinch coin presale ends tonight, join the telegram group", "spam", 1),
        ("Join our telegram for goldfinch coin signals, presale bonus", "spam", 1),
        ("Goldfinch coin presale is live, telegram link in my profile", "spam", 1),
        ("The roadworks on the high street finish on Friday", "spam", 0),
        ("Good to see the library staying open late this summer", "spam", 0),
    ]
    probe = "Don't miss the goldfinch coin presale, our telegram has the details"
    civil = "The roadworks near the library finish on Friday"
    tuned = clf.fine_tune(model, site, seed=0)
    assert tuned.version != model.version
    assert tuned.thresholds == model.thresholds
    before, after = model.score(probe), tuned.score(probe)
    assert after["spam"] > before["spam"] + 0.15
    assert tuned.score(civil)["spam"] <= model.score(civil)["spam"] + 0.02
    for s in SIGNALS:  # other signals are untouched
        if s != "spam":
            assert after[s] == pytest.approx(before[s], abs=1e-6)
    # Scunthorpe protection survives fine-tuning on texts containing protected words
    tuned2 = clf.fine_tune(model, [("I grew up in Scunthorpe, buy my coin", "spam", 1)] * 3)
    tpl, word, neutral = clf.SCUNTHORPE_CHECKS[0]
    masked, neutral_score = tuned2.score(tpl.format(word)), tuned2.score(tpl.format(neutral))
    assert masked["spam"] <= neutral_score["spam"] + 0.02


def test_fine_tune_is_deterministic_and_saves(model, tmp_path):
    site = [("what a load of tosh from this clown", "insult", 1),
            ("you clown, read the article first", "insult", 1),
            ("fair enough, thanks for explaining", "insult", 0)]  # fmt: skip
    a = clf.fine_tune(model, site, seed=1)
    b = clf.fine_tune(model, site, seed=1)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.version == b.version
    clf.save(a, tmp_path / "ft.json")
    loaded = clf.load(tmp_path / "ft.json")
    assert loaded.metadata["parent_version"] == model.version
    assert loaded.score("you clown")["insult"] == pytest.approx(a.score("you clown")["insult"])
    with pytest.raises(ValueError):
        clf.fine_tune(model, [("text", "rudeness", 1)])
    with pytest.raises(ValueError):
        clf.fine_tune(model, [])
