"""In-process rule-breaking classifier for Parley comments.

One logistic-regression model per signal (``insult``, ``offensive``, ``hate``, ``spam``,
``legal_advice``) over a shared, hashed feature space:

* the text is normalised (NFKC, invisible characters removed, accents folded, lower case,
  common homoglyphs and leetspeak mapped, 3+ repeated letters collapsed, punctuation inside
  words such as ``f.u.c.k`` removed, spaced-out single letters ``f u c k`` joined), while
  every token keeps its character span in the *original* text;
* features are word unigrams and bigrams, plus character 3-5-grams taken inside word
  boundaries **only for words that are not in the shipped list of known-clean words**
  (English words and UK place names): a known word is represented by its whole-word feature
  only, so a bad substring inside an ordinary word never lights up a sub-word n-gram;
* "protected" words - UK place names, a short list of words known to trip substring
  filters (``assess``, ``class``...), and dictionary words that contain a strong abuse marker
  inside them without being markers themselves - are masked altogether (no unigram, no
  bigram), so ``Scunthorpe``, ``Penistone`` or ``Middlesex`` cannot move any score;
* feature strings are hashed with ``sklearn.utils.murmurhash3_32`` into 2**20 buckets, counts
  are L2-normalised, and ``LogisticRegression`` (scikit-learn) is fitted per signal.

Scoring is hand-written (own tokeniser, murmurhash and a sparse dot product), so scoring one
comment does not pay scikit-learn's per-call validation overhead.  The shipped model is plain
numpy arrays in an ``.npz`` (``allow_pickle=False``) next to a JSON manifest carrying the
checksums, the scikit-learn version and the thresholds.

This module must not import Flask.
"""

from __future__ import annotations

import csv
import datetime as _dt
import functools
import gzip
import hashlib
import io
import json
import math
import pathlib
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.utils import murmurhash3_32

__all__ = [
    "SIGNALS",
    "ModelIntegrityError",
    "SignalModel",
    "default_model_path",
    "load",
    "save",
    "train",
    "fine_tune",
    "read_labelled_csv",
    "discover_files",
    "signal_from_filename",
    "Featurizer",
    "UK_PLACE_NAMES",
    "KNOWN_CLEAN_WORDS",
    "SCUNTHORPE_CHECKS",
]

SIGNALS: tuple[str, ...] = ("insult", "offensive", "hate", "spam", "legal_advice")

N_FEATURES = 2**20
FEATURE_VERSION = 1
CHAR_NGRAMS = (3, 4, 5)
MAX_CHAR_WORD = 30  # longer out-of-lexicon words only contribute n-grams of their first 30 chars
MIN_DF = 2  # hashed columns seen in fewer training texts get no weight

#: per-signal inverse regularisation strength, chosen by 5-fold CV (see docs/model-card.md)
DEFAULT_C: dict[str, float] = {
    "insult": 8.0,
    "offensive": 8.0,
    "hate": 8.0,
    "spam": 8.0,
    "legal_advice": 2.0,
}

#: the "hold for review" threshold maximises F1 in CV among thresholds that hold at most
#: MAX_HOLD_RATE of all civil (label 0) texts and at most MAX_SOURCE_HOLD_RATE of the civil
#: texts of any one source file
MAX_HOLD_RATE = 0.05
MAX_SOURCE_HOLD_RATE = 0.10
#: the "reject" threshold is the lowest with at least REJECT_PRECISION in CV that rejects at
#: most MAX_REJECT_RATE of all civil texts (MAX_SOURCE_REJECT_RATE of any one source's)
REJECT_PRECISION = 0.95
MAX_REJECT_RATE = 0.01
MAX_SOURCE_REJECT_RATE = 0.02

MODEL_DIR = pathlib.Path(__file__).resolve().parent / "models"
MANIFEST_NAME = "signals.json"
WORDLIST_NAME = "wordlist-en-gb.txt.gz"
FORMAT = "parley-signals/1"


class ModelIntegrityError(Exception):
    """The model file is missing, corrupt, tampered with or built for another scikit-learn."""


# --------------------------------------------------------------------------------------
# Known-clean words: UK place names (added to the English word list; never treated as
# "flagged" even when the training data happens to be rich in them).
# --------------------------------------------------------------------------------------

UK_PLACE_NAMES: tuple[str, ...] = (
    "scunthorpe", "penistone", "essex", "sussex", "middlesex", "wessex", "cockermouth",
    "clitheroe", "shitterton", "bitchfield", "cumnock", "cummertrees", "wetwang", "crapstone",
    "cockfosters", "lickey", "dorking", "horsham", "sandwich", "shaftesbury", "cockburnspath",
    "pennycock", "cockington", "cockshutt", "cockley", "titchfield", "titchmarsh", "cumwhinton",
    "knockin", "assington", "asselby", "bassingham", "passingford", "sexhow", "essendon",
    "shitlington", "hornsea", "hornchurch", "hornsey", "analby", "rimswell", "bushey", "cuckfield",
    "fanshawe", "gaywood", "cockayne", "penisarwaun", "spittal", "cockerham", "dickleburgh",
    "doncaster", "rotherham", "barnsley", "sheffield", "leeds", "bradford", "wakefield",
    "huddersfield", "halifax", "york", "hull", "grimsby", "lincoln", "nottingham", "derby",
    "leicester", "coventry", "birmingham", "wolverhampton", "walsall", "dudley", "stoke",
    "stafford", "shrewsbury", "hereford", "worcester", "gloucester", "cheltenham", "bristol",
    "bath", "swindon", "oxford", "reading", "slough", "london", "croydon", "bromley", "harrow",
    "barnet", "enfield", "ealing", "hounslow", "hillingdon", "brent", "camden", "hackney",
    "islington", "lambeth", "southwark", "lewisham", "greenwich", "bexley", "havering",
    "redbridge", "newham", "barking", "dagenham", "waltham", "tower", "hamlets", "westminster",
    "kensington", "chelsea", "hammersmith", "fulham", "wandsworth", "merton", "sutton", "kingston",
    "richmond", "twickenham", "watford", "luton", "bedford", "northampton", "peterborough",
    "cambridge", "norwich", "ipswich", "colchester", "chelmsford", "southend", "basildon",
    "brighton", "hove", "eastbourne", "hastings", "worthing", "crawley", "guildford", "woking",
    "maidstone", "canterbury", "dover", "folkestone", "margate", "ramsgate", "chatham",
    "gillingham", "rochester", "tunbridge", "wells", "sevenoaks", "ashford", "southampton",
    "portsmouth", "winchester", "basingstoke", "bournemouth", "poole", "weymouth", "dorchester",
    "salisbury", "exeter", "plymouth", "torquay", "truro", "penzance", "falmouth", "taunton",
    "yeovil", "bridgwater", "glastonbury", "manchester", "salford", "stockport", "oldham",
    "rochdale", "bolton", "bury", "wigan", "warrington", "liverpool", "birkenhead", "wirral",
    "southport", "preston", "blackpool", "blackburn", "burnley", "lancaster", "carlisle", "kendal",
    "penrith", "workington", "whitehaven", "barrow", "newcastle", "gateshead", "sunderland",
    "durham", "darlington", "middlesbrough", "stockton", "hartlepool", "redcar", "whitby",
    "scarborough", "harrogate", "ripon", "selby", "goole", "beverley", "bridlington", "skipton",
    "keighley", "chesterfield", "mansfield", "worksop", "newark", "grantham", "boston", "skegness",
    "louth", "spalding", "stamford", "rutland", "oakham", "kettering", "corby", "wellingborough",
    "daventry", "rugby", "nuneaton", "warwick", "leamington", "stratford", "redditch",
    "kidderminster", "bromsgrove", "telford", "ludlow", "oswestry", "crewe", "chester",
    "macclesfield", "wilmslow", "buxton", "matlock", "ilkeston", "loughborough", "hinckley",
    "tamworth", "lichfield", "cannock", "burton", "uttoxeter", "leek", "stone", "newport",
    "cardiff", "swansea", "wrexham", "bangor", "aberystwyth", "carmarthen", "llanelli", "merthyr",
    "pontypridd", "bridgend", "barry", "caerphilly", "cwmbran", "monmouth", "abergavenny",
    "brecon", "llandudno", "rhyl", "holyhead", "caernarfon", "glasgow", "edinburgh", "aberdeen",
    "dundee", "inverness", "perth", "stirling", "paisley", "kilmarnock", "ayr", "dumfries",
    "falkirk", "livingston", "motherwell", "hamilton", "greenock", "oban", "fort", "william",
    "thurso", "wick", "kirkwall", "lerwick", "stornoway", "belfast", "derry", "londonderry",
    "lisburn", "newry", "armagh", "omagh", "enniskillen", "coleraine", "ballymena", "antrim",
    "larne", "craigavon", "portadown", "cornwall", "devon", "dorset", "somerset", "wiltshire",
    "hampshire", "berkshire", "surrey", "kent", "oxfordshire", "buckinghamshire", "hertfordshire",
    "bedfordshire", "cambridgeshire", "norfolk", "suffolk", "lincolnshire", "nottinghamshire",
    "derbyshire", "leicestershire", "northamptonshire", "warwickshire", "worcestershire",
    "herefordshire", "gloucestershire", "shropshire", "staffordshire", "cheshire", "lancashire",
    "yorkshire", "cumbria", "northumberland", "merseyside", "tyne", "wear", "teesside",
    "humberside", "anglia", "midlands", "cotswolds", "pennines", "fenland", "dartmoor", "exmoor",
    "snowdonia", "highlands", "lowlands", "fife", "lothian", "strathclyde", "grampian", "galloway",
    "argyll", "orkney", "shetland", "hebrides", "anglesey", "gwynedd", "powys", "ceredigion",
    "pembrokeshire", "glamorgan", "gwent", "clwyd", "fermanagh", "tyrone",
)

#: ordinary words known to trip naive substring filters; always known-clean and protected
KNOWN_CLEAN_WORDS: tuple[str, ...] = (
    "assess", "assessed", "assesses", "assessing", "assessment", "assessments", "assessor",
    "class", "classes", "classed", "classic", "classics", "classical", "classify", "classified",
    "classroom", "classmate", "classmates", "pass", "passed", "passes", "passing", "passage",
    "passenger", "passengers", "passion", "passionate", "password", "grass", "glass", "glasses",
    "mass", "masses", "massive", "bass", "brass", "embassy", "ambassador", "cassette", "compass",
    "harass", "harassment", "assist", "assistant", "assume", "assumption", "associate",
    "association", "analysis", "analyst", "analytic", "therapist", "cocktail", "cocktails",
    "peacock", "hancock", "shuttlecock", "cockpit", "cockney", "dickens", "document", "documents",
    "documentary", "circumstance", "circumstances", "cumulative", "cucumber", "title", "titles",
    "titled", "button", "buttons", "buttress", "butter", "butterfly", "sextant", "sextet",
    "sexton", "skyscraper", "scrape", "scraped", "grape", "grapes", "shiitake", "constitution",
    "competition", "petition", "repetition", "partition", "hello", "shell", "shellfish",
)

#: (sentence template, word with an unlucky substring, neutral word) used by tests, the CV
#: comparison and the model card: the first must never score above the second.
SCUNTHORPE_CHECKS: tuple[tuple[str, str, str], ...] = (
    ("I grew up in {} and love it.", "Scunthorpe", "Doncaster"),
    ("I grew up in {} and love it.", "Penistone", "Doncaster"),
    ("I grew up in {} and love it.", "Essex", "Doncaster"),
    ("I grew up in {} and love it.", "Sussex", "Doncaster"),
    ("I grew up in {} and love it.", "Middlesex", "Doncaster"),
    ("Our train stopped at {} on the way north.", "Scunthorpe", "Rotherham"),
    ("The councillor for {} spoke at the meeting.", "Middlesex", "Barnsley"),
    ("Inspectors will {} the school in March.", "assess", "inspect"),
    ("My daughter's {} went to the museum today.", "class", "school"),
)

# --------------------------------------------------------------------------------------
# Normalisation and tokenisation (keeps character spans into the original text)
# --------------------------------------------------------------------------------------

_INVISIBLE_EXTRA = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180e\u3164\uffa0")

# Latin look-alikes from Cyrillic and Greek, used in homoglyph evasion
_CONFUSABLES = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j",
    "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g", "ı": "i", "α": "a", "β": "b",
    "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "ω": "w", "ѵ": "v", "һ": "h", "ӏ": "l",
}  # fmt: skip

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s",
     "!": "i", "|": "i"}
)  # fmt: skip

_CHUNK_RE = re.compile(r"\S+")
_URL_RE = re.compile(
    r"^(?:[a-z][a-z0-9+.\-]*://|www\.)"
    r"|^[\w\-]+(?:\.[\w\-]+)*\.(?:com|net|org|info|biz|ly|io|co|uk|me|tv|us|xyz|ru|gl|be|to)"
    r"(?:[/?#:]|$)"
)
_EMAIL_RE = re.compile(r"^[\w.+\-]+@[\w\-]+\.[\w.\-]+")
_MENTION_RE = re.compile(r"^@\w{4,}")
_CORE_RE = re.compile(r"[\w@$!|*.'’\-]+")
_JOIN_RE = re.compile(r"[.\-_'’*]+")
_TRIM = ".-_'’*!|"
_ALPHA_RE = re.compile(r"[^\W\d_]")
_NUMERIC_WORD_RE = re.compile(
    r"^\d+(?:st|nd|rd|th|s|am|pm|k|m|p|x|kg|km|mph|gb|mb|ft|yo|mins?|hrs?)$"
)
_REPEAT_RE = re.compile(r"([^\W\d_])\1{2,}")


def _squeeze_repeats(word: str) -> str:
    """A letter three or more times in a row, twice: "soooo" -> "soo". The search first: a
    sub with a template enters the re module's Python code on every call, found or not,
    and most words have no such run."""
    return _REPEAT_RE.sub(r"\1\1", word) if _REPEAT_RE.search(word) else word


_PIECE_RE = re.compile(r"[^.\-_'’*]+")
_URL_PIECE_RE = re.compile(r"[a-z]{2,}")


def normalize_chars(text: str) -> tuple[str, list[int] | None]:
    """Return (normalised text, original index of each normalised char or None = identity)."""
    if text.isascii():
        return text.lower(), None
    out: list[str] = []
    pos: list[int] = []
    category = unicodedata.category
    nfkc = unicodedata.normalize
    combining = unicodedata.combining
    for i, c in enumerate(text):
        if c.isascii():
            out.append(c.lower())
            pos.append(i)
            continue
        cat = category(c)
        if cat in ("Cf", "Mn", "Me", "Cc", "Co", "Cs") or c in _INVISIBLE_EXTRA:
            continue
        if c.isspace():
            out.append(" ")
            pos.append(i)
            continue
        for d in nfkc("NFKD", nfkc("NFKC", c)):
            if combining(d):
                continue
            for e in d.lower():
                if combining(e):
                    continue
                out.append(_CONFUSABLES.get(e, e))
                pos.append(i)
    return "".join(out), pos


@dataclass(slots=True)
class Token:
    text: str  # normalised form
    start: int  # span in the original text
    end: int
    special: bool = False  # _url_, _mention_, numbers: no character n-grams


# A chunk's tokens as (text, start, end, special), offsets relative to the chunk.
_ChunkTokens = tuple[tuple[str, int, int, bool], ...]


# Words recur: most chunks of a post were seen before. Only short chunks are kept (a long
# one is rarely seen twice, and 8,192 entries of at most 32 characters stay a few MB even
# when someone posts nothing but distinct junk).
_CACHED_CHUNK_MAX = 32


@functools.lru_cache(maxsize=8_192)
def _cached_chunk_tokens(chunk: str) -> _ChunkTokens:
    return _chunk_tokens(chunk)


def _chunk_tokens(chunk: str) -> _ChunkTokens:
    """Tokens of one whitespace-free chunk of normalised text."""
    if ("." in chunk or ":" in chunk or "/" in chunk) and (
        _URL_RE.match(chunk) or _EMAIL_RE.match(chunk)
    ):
        return (("_url_", 0, len(chunk), True),) + tuple(
            (p.group(), p.start(), p.end(), False) for p in _URL_PIECE_RE.finditer(chunk)
        )
    out: list[tuple[str, int, int, bool]] = []
    c0 = 0
    if chunk[0] == "@" and (mm := _MENTION_RE.match(chunk)):
        out.append(("_mention_", 0, mm.end(), True))
        if mm.end() == len(chunk):
            return tuple(out)
        c0 = mm.end()
        chunk = chunk[c0:]
    if chunk.isalpha():  # fast path: a plain word
        word = _squeeze_repeats(chunk) if len(chunk) > 2 else chunk
        out.append((word, c0, c0 + len(chunk), False))
        return tuple(out)
    for cm in _CORE_RE.finditer(chunk):
        a = cm.start()
        b = cm.end()
        while a < b and chunk[a] in _TRIM:
            a += 1
        while b > a and chunk[b - 1] in _TRIM:
            b -= 1
        if a >= b:
            continue
        core = chunk[a:b]
        base = c0 + a
        if not _ALPHA_RE.search(core):
            digits = "".join(ch for ch in core if ch.isdigit())
            if digits:
                text = digits if len(digits) <= 4 else "_longnum_"
                out.append((text, base, base + len(core), True))
            continue
        if not _NUMERIC_WORD_RE.match(core):
            core = core.translate(_LEET)
        pieces = [(p.group(), p.start(), p.end()) for p in _PIECE_RE.finditer(core)]
        if not pieces:
            continue
        if len(pieces) > 1:
            seps = _JOIN_RE.findall(core[pieces[0][1] : pieces[-1][2]])
            join = all(len(p[0]) <= 2 for p in pieces) or all(
                set(sep) <= {"'", "’", "*"} for sep in seps
            )
            if join:
                pieces = [("".join(p[0] for p in pieces), pieces[0][1], pieces[-1][2])]
        for word, pa, pb in pieces:
            if len(word) > 2:
                word = _squeeze_repeats(word)
            out.append((word, base + pa, base + pb, False))
    return tuple(out)


def tokenize(text: str) -> list[Token]:
    """Normalise and tokenise ``text``; every token keeps its span in the original text."""
    norm, pos = normalize_chars(text)
    n_orig = len(text)
    n_pos = len(pos) if pos is not None else 0

    tokens: list[Token] = []
    for m in _CHUNK_RE.finditer(norm):
        c0 = m.start()
        chunk = m.group()
        parts = (
            _cached_chunk_tokens(chunk) if len(chunk) <= _CACHED_CHUNK_MAX else _chunk_tokens(chunk)
        )
        for word, a, b, special in parts:
            a += c0
            b += c0
            if pos is not None:  # map the half-open span back to the original text
                a = pos[a] if a < n_pos else n_orig
                b = pos[b - 1] + 1 if b - 1 < n_pos else n_orig
            tokens.append(Token(word, a, b, special))

    # join runs of 3+ single letters: "f u c k" -> "fuck"
    if len(tokens) >= 3:
        out: list[Token] = []
        i = 0
        n = len(tokens)
        while i < n:
            t = tokens[i]
            if len(t.text) == 1 and not t.special and t.text.isalpha():
                j = i
                while (
                    j + 1 < n
                    and len(tokens[j + 1].text) == 1
                    and not tokens[j + 1].special
                    and tokens[j + 1].text.isalpha()
                ):
                    j += 1
                if j - i + 1 >= 3:
                    out.append(
                        Token("".join(x.text for x in tokens[i : j + 1]), t.start, tokens[j].end)
                    )
                    i = j + 1
                    continue
            out.append(t)
            i += 1
        tokens = out
    return tokens


def _hash(feature: str) -> int:
    h = murmurhash3_32(feature, 0)
    return abs(h) % N_FEATURES


class Featurizer:
    """Turns text into hashed feature indices.  Stateless apart from the lexicon and a cache."""

    def __init__(
        self,
        lexicon: Iterable[str],
        protected: Iterable[str] = (),
        cache_size: int = 200_000,
    ):
        self.lexicon = frozenset(lexicon)
        self.protected = frozenset(protected)
        self.cache_size = cache_size
        self._cache: dict[str, tuple[int, ...]] = {}

    def clear_cache(self) -> None:
        self._cache.clear()

    def word_features(self, word: str, special: bool = False) -> tuple[int, ...]:
        """Hashed unigram (+ char n-grams for out-of-lexicon words) of one token."""
        key = ("\x00" + word) if special else word
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        feats = [_hash("w:" + word)]
        if not special and word not in self.lexicon and _ALPHA_RE.search(word):
            padded = " " + word[:MAX_CHAR_WORD] + " "
            L = len(padded)
            for n in CHAR_NGRAMS:
                for i in range(L - n + 1):
                    feats.append(_hash("c:" + padded[i : i + n]))
        res = tuple(feats)
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[key] = res
        return res

    def analyse(self, text: str) -> tuple[list[Token], list[tuple[int, ...]], list[int | None]]:
        """Tokens, each token's hashed features, and the hashed bigram after each token
        (``None`` where there is none).  Protected words are masked: no feature of their own
        and no bigram, so they can never move a score."""
        tokens = tokenize(text)
        prot = self.protected
        per_token = [
            () if t.text in prot else self.word_features(t.text, t.special) for t in tokens
        ]
        bigrams: list[int | None] = []
        for i in range(len(tokens) - 1):
            a, b = tokens[i].text, tokens[i + 1].text
            bigrams.append(None if a in prot or b in prot else _hash("b:" + a + " " + b))
        return tokens, per_token, bigrams

    def hashes(self, text: str) -> tuple[list[int], int]:
        """(hashed feature ids, number of masked features).

        A masked word still counts in the L2 norm as if it were an ordinary known word whose
        features weigh nothing (one unigram plus its bigrams), so masking "Scunthorpe" gives
        exactly the score of a word the model has no opinion about."""
        return self.hashes_of(*self.analyse(text))

    def hashes_of(
        self, tokens: list[Token], per_token: list[tuple[int, ...]], bigrams: list[int | None]
    ) -> tuple[list[int], int]:
        """``hashes`` from an ``analyse`` result already in hand."""
        out: list[int] = []
        masked = 0
        for t, f in zip(tokens, per_token, strict=True):
            if f:
                out.extend(f)
            elif t.text in self.protected:
                masked += 1
        for h in bigrams:
            if h is None:
                masked += 1
            else:
                out.append(h)
        return out, masked

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """L2-normalised count matrix (len(texts) x N_FEATURES), float64."""
        indptr = [0]
        indices: list[int] = []
        masked = np.zeros(len(texts))
        for i, t in enumerate(texts):
            h, masked[i] = self.hashes(t)
            indices.extend(h)
            indptr.append(len(indices))
        X = sp.csr_matrix(
            (np.ones(len(indices)), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
            shape=(len(texts), N_FEATURES),
        )
        X.sum_duplicates()
        sq = np.asarray(X.multiply(X).sum(axis=1)).ravel() + masked
        norms = np.sqrt(sq)
        norms[norms == 0] = 1.0
        X.data /= np.repeat(norms, np.diff(X.indptr))
        X.indices = X.indices.astype(np.int32)
        X.indptr = X.indptr.astype(np.int32)
        return X


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


_SPECIAL_LABELS = {"_url_": "<link>", "_mention_": "<@mention>", "_longnum_": "<number>"}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


@dataclass
class SignalModel:
    version: str
    thresholds: dict[str, float]
    reject_thresholds: dict[str, float]
    sklearn_version: str
    # (n,) uint32: the sorted hashed feature ids that have a non-zero weight
    indices: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)  # (n, len(SIGNALS)) float32
    intercepts: np.ndarray = field(repr=False)  # (len(SIGNALS),) float64
    lexicon: frozenset[str] = field(repr=False)
    metadata: dict = field(default_factory=dict, repr=False)
    protected: frozenset[str] = field(default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.uint32)
        self.weights = np.ascontiguousarray(self.weights, dtype=np.float32)
        self.intercepts = np.asarray(self.intercepts, dtype=np.float64)
        self.lexicon = frozenset(self.lexicon)
        self.protected = frozenset(self.protected)
        self._featurizer = Featurizer(self.lexicon, self.protected)
        self._row = np.full(N_FEATURES, -1, dtype=np.int32)
        self._row[self.indices.astype(np.int64)] = np.arange(len(self.indices), dtype=np.int32)

    # ----- scoring -------------------------------------------------------------------
    def _logits_from_hashes(self, h: list[int], masked: int = 0) -> np.ndarray:
        if not h:
            return self.intercepts.copy()
        u, c = np.unique(np.asarray(h, dtype=np.int64), return_counts=True)
        norm = math.sqrt(float((c * c).sum()) + masked)
        rows = self._row[u]
        m = rows >= 0
        if not m.any():
            return self.intercepts.copy()
        return (c[m] / norm) @ self.weights[rows[m]] + self.intercepts

    def score(self, text: str) -> dict[str, float]:
        """Probability in [0, 1] for every signal."""
        p = _sigmoid(self._logits_from_hashes(*self._featurizer.hashes(text or "")))
        return {s: float(v) for s, v in zip(SIGNALS, p, strict=True)}

    def score_many(self, texts: Sequence[str]) -> list[dict[str, float]]:
        if len(texts) == 0:
            return []
        P = self.predict_proba_matrix(texts)
        return [{s: float(v) for s, v in zip(SIGNALS, row, strict=True)} for row in P]

    def predict_proba_matrix(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), len(SIGNALS)) array of probabilities, columns in SIGNALS order."""
        X = self._featurizer.transform([t or "" for t in texts])
        rows = self._row[X.indices]
        keep = rows >= 0
        row_ids = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        Z = sp.csr_matrix(
            (X.data[keep], (row_ids[keep], rows[keep])), shape=(X.shape[0], len(self.indices))
        )
        logits = np.asarray(Z @ self.weights, dtype=np.float64) + self.intercepts
        return _sigmoid(logits)

    def signal_scores(self, texts: Sequence[str], signal: str) -> np.ndarray:
        return self.predict_proba_matrix(texts)[:, _signal_index(signal)]

    # ----- explanation ---------------------------------------------------------------
    def explain(self, text: str, signal: str | None = None, k: int = 5) -> list[dict]:
        """Terms that pushed the score(s) up, strongest first.

        Each item: ``{"signal", "term", "weight", "spans"}`` where ``weight`` is the term's
        contribution to the signal's log-odds and ``spans`` are ``[start, end]`` character
        offsets into ``text`` (the original, un-normalised text).  With ``signal=None`` the
        top ``k`` terms of every signal are returned, in SIGNALS order.
        """
        signals = SIGNALS if signal is None else (signal,)
        cols = [_signal_index(s) for s in signals]
        text = text or ""
        tokens, per_token, bigrams = self._featurizer.analyse(text)
        allh, masked = self._featurizer.hashes_of(tokens, per_token, bigrams)
        if not allh:
            return []
        _, c = np.unique(np.asarray(allh, dtype=np.int64), return_counts=True)
        norm = math.sqrt(float((c * c).sum()) + masked)

        # Every term (a token's label or a bigram) gets an id; each of its hashed features
        # is listed once per occurrence with that id, and the weights are summed per id in
        # one pass (it was a handful of small numpy calls per token).
        term_ids: dict[str, int] = {}
        spans: list[list[list[int]]] = []
        feature_term: list[int] = []
        features: list[int] = []

        def add(label: str, hs: Sequence[int], span: list[int]) -> None:
            tid = term_ids.setdefault(label, len(term_ids))
            if tid == len(spans):
                spans.append([])
            spans[tid].append(span)
            features.extend(hs)
            feature_term.extend([tid] * len(hs))

        for tok, hs in zip(tokens, per_token, strict=True):
            if hs:
                label = _SPECIAL_LABELS.get(tok.text, tok.text) if tok.special else tok.text
                add(label, hs, [tok.start, tok.end])
        for i, h in enumerate(bigrams):
            if h is not None:
                a, b = tokens[i], tokens[i + 1]
                add(a.text + " " + b.text, (h,), [a.start, b.end])

        rows = self._row[np.asarray(features, dtype=np.int64)]
        known = rows >= 0
        owner = np.asarray(feature_term, dtype=np.int64)[known]
        w = self.weights[rows[known]][:, cols].astype(np.float64)
        n_terms = len(term_ids)
        labels = list(term_ids)
        out: list[dict] = []
        for j, s in enumerate(signals):
            totals = np.bincount(owner, weights=w[:, j], minlength=n_terms) / norm
            ranked = sorted(
                ((float(totals[t]), labels[t]) for t in np.flatnonzero(totals > 0)),
                key=lambda x: (-x[0], x[1]),
            )[:k]
            for weight, label in ranked:
                uniq = sorted({(a, b) for a, b in spans[term_ids[label]]})
                out.append(
                    {"signal": s, "term": label, "weight": round(weight, 4),
                     "spans": [[a, b] for a, b in uniq]}
                )  # fmt: skip
        return out

    # ----- helpers -------------------------------------------------------------------
    def dense_weights(self, signal: str) -> np.ndarray:
        w = np.zeros(N_FEATURES, dtype=np.float64)
        w[self.indices.astype(np.int64)] = self.weights[:, _signal_index(signal)]
        return w

    def clear_cache(self) -> None:
        self._featurizer.clear_cache()

    @property
    def featurizer(self) -> Featurizer:
        return self._featurizer


def _signal_index(signal: str) -> int:
    try:
        return SIGNALS.index(signal)
    except ValueError:
        raise ValueError(
            f"unknown signal {signal!r}; expected one of {', '.join(SIGNALS)}"
        ) from None


# --------------------------------------------------------------------------------------
# Building a model from dense per-signal coefficient vectors
# --------------------------------------------------------------------------------------


def _assemble(
    coefs: dict[str, np.ndarray],
    intercepts: dict[str, float],
    thresholds: dict[str, float],
    reject_thresholds: dict[str, float],
    lexicon: Iterable[str],
    metadata: dict,
    date: str | None = None,
    protected: Iterable[str] = (),
) -> SignalModel:
    W = np.vstack([coefs[s] for s in SIGNALS]).T  # (N_FEATURES, S)
    nz = np.flatnonzero(np.any(W != 0, axis=1)).astype(np.uint32)
    # float16 storage: round-trip now so that the in-memory model equals the saved one
    Wq = W[nz].astype(np.float16).astype(np.float32)
    b = np.array([float(intercepts[s]) for s in SIGNALS], dtype=np.float64)
    digest = hashlib.sha256()
    digest.update(nz.tobytes())
    digest.update(Wq.tobytes())
    digest.update(b.tobytes())
    digest.update(json.dumps([thresholds, reject_thresholds], sort_keys=True).encode())
    date = date or _dt.datetime.now(_dt.UTC).date().isoformat()
    version = f"signals-{date}-{digest.hexdigest()[:12]}"
    meta = dict(metadata)
    meta.setdefault("created", date)
    return SignalModel(
        version=version,
        thresholds={s: float(thresholds[s]) for s in SIGNALS},
        reject_thresholds={s: float(reject_thresholds[s]) for s in SIGNALS},
        sklearn_version=sklearn.__version__,
        indices=nz,
        weights=Wq,
        intercepts=b,
        lexicon=frozenset(lexicon),
        metadata=meta,
        protected=frozenset(protected),
    )


# --------------------------------------------------------------------------------------
# Saving and loading (npz with allow_pickle=False + JSON manifest, both checksummed)
# --------------------------------------------------------------------------------------


def default_model_path() -> pathlib.Path:
    """The shipped model's manifest, ``moderation/models/signals.json``."""
    return MODEL_DIR / MANIFEST_NAME


def _resolve_manifest(path: str | pathlib.Path | None) -> pathlib.Path:
    p = pathlib.Path(path) if path is not None else default_model_path()
    if p.suffix != ".json":
        p = p / MANIFEST_NAME
    return p


def _sha256_file(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest_body_digest(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


def _write_npz(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """Deterministic .npz (fixed zip timestamps) readable by ``np.load(allow_pickle=False)``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name in sorted(arrays):
            arr = np.ascontiguousarray(arrays[name])
            if arr.dtype == object:
                raise TypeError("object arrays are not allowed")
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compresslevel=6)
    path.write_bytes(buf.getvalue())


def save(model: SignalModel, path: str | pathlib.Path) -> str:
    """Write ``model`` to ``path`` (a ``.json`` manifest path or a directory) and return the
    sha256 of the weights file (``<stem>.npz`` next to the manifest)."""
    manifest_path = _resolve_manifest(path)
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    weights_path = manifest_path.with_suffix(".npz")
    lex = "\n".join(sorted(model.lexicon)).encode("utf-8")
    prot = "\n".join(sorted(model.protected)).encode("utf-8")
    _write_npz(
        weights_path,
        {
            "indices": model.indices.astype(np.uint32),
            "weights": model.weights.astype(np.float16),
            "intercepts": model.intercepts.astype(np.float64),
            "lexicon": np.frombuffer(lex, dtype=np.uint8),
            "protected": np.frombuffer(prot, dtype=np.uint8),
        },
    )
    sha = _sha256_file(weights_path)
    manifest = {
        "format": FORMAT,
        "version": model.version,
        "signals": list(SIGNALS),
        "sklearn_version": model.sklearn_version,
        "numpy_version": np.__version__,
        "feature_version": FEATURE_VERSION,
        "n_features": N_FEATURES,
        "char_ngrams": list(CHAR_NGRAMS),
        "thresholds": {s: model.thresholds[s] for s in SIGNALS},
        "reject_thresholds": {s: model.reject_thresholds[s] for s in SIGNALS},
        "weights_file": weights_path.name,
        "weights_sha256": sha,
        "metadata": model.metadata,
    }
    manifest["manifest_sha256"] = _manifest_body_digest(manifest)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", "utf-8")
    return sha


def _same_series(built: object, installed: str) -> bool:
    if not isinstance(built, str):
        return False
    return built.split(".")[:2] == installed.split(".")[:2]


def load(path: str | pathlib.Path | None = None) -> SignalModel:
    """Load a model, verifying checksums and the scikit-learn version.

    ``path`` is the manifest (``.json``) or a directory containing ``signals.json``; the
    default is the shipped model.  Raises :class:`ModelIntegrityError` when a file is missing
    or unreadable, a checksum does not match, or the manifest was written by another
    scikit-learn version than the one installed.
    """
    manifest_path = _resolve_manifest(path)
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(f"cannot read model manifest {manifest_path}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelIntegrityError(f"{manifest_path} is not a {FORMAT} manifest")
    if manifest.get("manifest_sha256") != _manifest_body_digest(manifest):
        raise ModelIntegrityError(f"manifest checksum mismatch in {manifest_path} (edited?)")
    # Same scikit-learn release series (major.minor): scoring is our own code over plain
    # arrays, so patch releases can't change it, while a new series may change training.
    if not _same_series(manifest.get("sklearn_version"), sklearn.__version__):
        raise ModelIntegrityError(
            f"model was built with scikit-learn {manifest.get('sklearn_version')}, "
            f"but {sklearn.__version__} is installed; retrain the model"
        )
    if (
        manifest.get("feature_version") != FEATURE_VERSION
        or manifest.get("n_features") != N_FEATURES
        or manifest.get("signals") != list(SIGNALS)
    ):
        raise ModelIntegrityError("model feature layout does not match this code")
    weights_path = manifest_path.parent / str(manifest.get("weights_file", ""))
    if weights_path.parent != manifest_path.parent or not weights_path.is_file():
        raise ModelIntegrityError(f"weights file missing: {weights_path}")
    sha = _sha256_file(weights_path)
    if sha != manifest.get("weights_sha256"):
        raise ModelIntegrityError(
            f"checksum mismatch for {weights_path.name}: {sha} != {manifest.get('weights_sha256')}"
        )
    try:
        with np.load(weights_path, allow_pickle=False) as z:
            indices = z["indices"]
            weights = z["weights"].astype(np.float32)
            intercepts = z["intercepts"]
            lexicon = bytes(z["lexicon"]).decode("utf-8").split("\n")
            protected = bytes(z["protected"]).decode("utf-8").split("\n")
    except Exception as exc:  # corrupt zip / missing member
        raise ModelIntegrityError(f"cannot read {weights_path}: {exc}") from exc
    if weights.shape != (len(indices), len(SIGNALS)) or intercepts.shape != (len(SIGNALS),):
        raise ModelIntegrityError("weights have an unexpected shape")
    return SignalModel(
        version=manifest["version"],
        thresholds={s: float(manifest["thresholds"][s]) for s in SIGNALS},
        reject_thresholds={s: float(manifest["reject_thresholds"][s]) for s in SIGNALS},
        sklearn_version=manifest["sklearn_version"],
        indices=indices,
        weights=weights,
        intercepts=intercepts,
        lexicon=frozenset(w for w in lexicon if w),
        metadata=manifest.get("metadata", {}),
        protected=frozenset(w for w in protected if w),
    )


# --------------------------------------------------------------------------------------
# Data files
# --------------------------------------------------------------------------------------


def signal_from_filename(name: str) -> str | None:
    """``legal-advice-reddit-rules-train.csv`` -> ``legal_advice``; None if not a signal file."""
    base = pathlib.Path(name).name.lower()
    if not base.endswith(".csv"):
        return None
    for s in sorted(SIGNALS, key=len, reverse=True):
        prefix = s.replace("_", "-") + "-"
        if base.startswith(prefix) or base.startswith(s + "-"):
            return s
    return None


def discover_files(paths: Sequence[str | pathlib.Path]) -> list[tuple[str, pathlib.Path]]:
    """Expand files and directories into sorted (signal, file) pairs of
    ``<signal>-<source>-train.csv`` files."""
    found: list[tuple[str, pathlib.Path]] = []
    for p in paths:
        p = pathlib.Path(p)
        if p.is_dir():
            for f in sorted(p.glob("*-train.csv")):
                s = signal_from_filename(f.name)
                if s:
                    found.append((s, f))
        elif p.is_file():
            s = signal_from_filename(p.name)
            if s is None:
                raise ValueError(
                    f"{p.name}: file name must start with a signal ({', '.join(SIGNALS)})"
                )
            found.append((s, p))
        else:
            raise FileNotFoundError(str(p))
    uniq = sorted({(s, f.resolve()) for s, f in found}, key=lambda x: (x[0], x[1].name))
    return uniq


def read_labelled_csv(path: str | pathlib.Path) -> tuple[list[str], np.ndarray]:
    """Read a ``text,label`` CSV. Raises ValueError on missing columns or labels not 0/1."""
    texts: list[str] = []
    labels: list[int] = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        fields = [x.strip().lower() for x in (reader.fieldnames or [])]
        if "text" not in fields or "label" not in fields:
            raise ValueError(f"{path}: expected a header with columns 'text' and 'label'")
        reader.fieldnames = fields
        for lineno, row in enumerate(reader, start=2):
            raw = (row.get("label") or "").strip()
            if raw in ("0", "1", "0.0", "1.0"):
                labels.append(int(float(raw)))
            else:
                raise ValueError(f"{path}:{lineno}: label must be 0 or 1, got {raw!r}")
            texts.append(row.get("text") or "")
    return texts, np.asarray(labels, dtype=np.int64)


def load_wordlist(path: str | pathlib.Path | None = None) -> set[str]:
    p = pathlib.Path(path) if path is not None else MODEL_DIR / WORDLIST_NAME
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8") as f:
        return {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}


def flagged_words(
    datasets: Sequence[tuple[str, str, list[str], np.ndarray]],
    min_docs: int = 5,
    min_rate: float = 0.5,
    min_lift: float = 1.5,
) -> set[str]:
    """Words that are themselves signals in some training file: seen in >= ``min_docs``
    texts, at least ``min_rate`` of them positive and ``min_lift`` times the file's base rate.
    These are removed from the known-clean lexicon so that they keep character n-grams."""
    flagged: set[str] = set()
    for _signal, _source, texts, y in datasets:
        base = float(np.mean(y)) if len(y) else 0.0
        need = max(min_rate, min_lift * base)
        if need > 1.0:
            continue
        df: dict[str, int] = {}
        pos: dict[str, int] = {}
        for t, lab in zip(texts, y, strict=True):
            for w in {tok.text for tok in tokenize(t) if not tok.special}:
                df[w] = df.get(w, 0) + 1
                if lab:
                    pos[w] = pos.get(w, 0) + 1
        for w, n in df.items():
            if n >= min_docs and pos.get(w, 0) / n >= need:
                flagged.add(w)
    return flagged


def build_lexicon(
    datasets: Sequence[tuple[str, str, list[str], np.ndarray]],
    wordlist: set[str] | None = None,
) -> tuple[frozenset[str], frozenset[str]]:
    """(known-clean lexicon, protected words) for a training run.

    * protected P: UK place names and :data:`KNOWN_CLEAN_WORDS` - masked altogether (no
      feature at all), so they cannot move any score;
    * bad substrings B: strong abuse markers in an insult/offensive/hate file (>= 10 texts,
      >= 80% positive, >= 2x the base rate), 3+ letters;
    * flagged F: words that are signals in any file (looser, see :func:`flagged_words`);
    * lexicon: dictionary words + P, minus the F words - except F words that contain a B word
      inside them without being B words themselves ("class" contains "ass"): those stay
      known, so they keep their whole-word evidence but never light up the substring's
      character n-grams.

    Lexicon words are represented by their whole-word feature only (no character n-grams).
    Removing flagged words from the lexicon gives their misspellings character n-grams to
    learn from.
    """
    words = set(wordlist if wordlist is not None else load_wordlist())
    protected = set(UK_PLACE_NAMES) | set(KNOWN_CLEAN_WORDS)
    words |= protected
    abuse = [d for d in datasets if d[0] in ("insult", "offensive", "hate")]
    bad = {
        b
        for b in flagged_words(abuse, min_docs=10, min_rate=0.8, min_lift=2.0)
        if len(b) >= 3 and b.isalpha()
    }

    def contains_bad(w: str) -> bool:
        n = len(w)
        return any(w[i:j] in bad for i in range(n) for j in range(i + 3, n + 1) if j - i < n)

    drop = {
        f
        for f in flagged_words(datasets)
        if f not in protected and (f in bad or not contains_bad(f))
    }
    return frozenset(words - drop), frozenset(protected)


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def _threshold_stats(y: np.ndarray, p: np.ndarray, t: float) -> dict[str, float]:
    pred = p >= t
    pos = y == 1
    tp = int(np.sum(pred & pos))
    fp = int(np.sum(pred & ~pos))
    fn = int(np.sum(~pred & pos))
    tn = int(np.sum(~pred & ~pos))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    p0 = tn / (tn + fn) if tn + fn else 0.0
    r0 = tn / (tn + fp) if tn + fp else 0.0
    f1_0 = 2 * p0 * r0 / (p0 + r0) if p0 + r0 else 0.0
    return {
        "threshold": float(t),
        "precision": precision,
        "recall": recall,  # = catch rate on label-1 texts
        "f1": f1,
        "f1_macro": (f1 + f1_0) / 2,
        "hold_rate_civil": fp / (fp + tn) if fp + tn else 0.0,
    }


def _cut_points(y: np.ndarray, p: np.ndarray, groups: np.ndarray | None):
    """Candidate cuts between distinct scores, best first: (scores at the cuts, tp, fp,
    pooled civil rate, worst per-source civil rate)."""
    order = np.argsort(-p, kind="mergesort")
    ps = p[order]
    ys = y[order]
    tp = np.cumsum(ys == 1)
    fp = np.cumsum(ys == 0)
    n_neg = max(int(fp[-1]), 1)
    # only cut between distinct scores: index i means "predict positive for ps[:i+1]"
    idx = np.flatnonzero(np.r_[ps[1:] != ps[:-1], True])
    fpr = fp[idx] / n_neg
    fpr_src = fpr.copy()
    if groups is not None:
        gs = np.asarray(groups)[order]
        for g in np.unique(gs):
            neg_g = (gs == g) & (ys == 0)
            n_g = int(neg_g.sum())
            if n_g >= 20:
                fpr_src = np.maximum(fpr_src, np.cumsum(neg_g)[idx] / n_g)
    return ps[idx], tp[idx], fp[idx], fpr, fpr_src


def choose_thresholds(
    y: np.ndarray,
    p: np.ndarray,
    max_hold_rate: float = MAX_HOLD_RATE,
    reject_precision: float = REJECT_PRECISION,
    max_reject_rate: float = MAX_REJECT_RATE,
    groups: np.ndarray | None = None,
    max_source_hold_rate: float = MAX_SOURCE_HOLD_RATE,
    max_source_reject_rate: float = MAX_SOURCE_REJECT_RATE,
) -> tuple[float, float]:
    """(decision, reject) thresholds from out-of-fold probabilities.

    decision: the threshold maximising F1 among those holding at most ``max_hold_rate`` of the
    civil texts (and, with ``groups`` - the source file of each row - at most
    ``max_source_hold_rate`` of any source's civil texts, for sources with 20+ of them).
    reject: the lowest threshold whose precision is at least ``reject_precision`` and that
    flags at most ``max_reject_rate`` of the civil texts (``max_source_reject_rate`` per
    source), not below the decision threshold; 1.0 (never) if unattainable.
    """
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    cut, tp, fp, fpr, fpr_src = _cut_points(y, p, groups)
    n_pos = max(int((y == 1).sum()), 1)
    prec = tp / np.maximum(tp + fp, 1)
    rec = tp / n_pos
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-12), 0)
    ok = (fpr <= max_hold_rate) & (fpr_src <= max_source_hold_rate)
    best = np.flatnonzero(ok)[int(np.argmax(f1[ok]))] if ok.any() else 0
    decision = float(cut[best])
    min_support = max(3, int(0.01 * n_pos))
    good = (
        (prec >= reject_precision)
        & (fpr <= max_reject_rate)
        & (fpr_src <= max_source_reject_rate)
        & (tp >= min_support)
        & (cut >= decision)
    )
    reject = float(cut[np.flatnonzero(good)[-1]]) if good.any() else 1.0
    return round(decision, 4), round(max(reject, decision), 4)


def operating_points(
    y: np.ndarray,
    p: np.ndarray,
    groups: np.ndarray | None = None,
    hold_rates: Sequence[float] = (0.01, 0.02, 0.05, 0.10, 0.20),
) -> list[dict]:
    """For each pooled civil hold rate: the lowest threshold within it and what it catches
    (for sites that want to set their own thresholds)."""
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    cut, tp, fp, fpr, fpr_src = _cut_points(y, p, groups)
    n_pos = max(int((y == 1).sum()), 1)
    out = []
    for h in hold_rates:
        ok = np.flatnonzero(fpr <= h)
        if not len(ok):
            continue
        i = ok[-1]
        out.append({
            "max_hold_rate": h, "threshold": round(float(cut[i]), 4),
            "hold_rate_civil": float(fpr[i]), "worst_source_hold_rate": float(fpr_src[i]),
            "recall": float(tp[i] / n_pos), "precision": float(tp[i] / max(tp[i] + fp[i], 1)),
        })  # fmt: skip
    return out


def _fit_lr(X: sp.csr_matrix, y: np.ndarray, C: float, seed: int) -> tuple[np.ndarray, float]:
    """Fit on columns seen in >= MIN_DF rows; return dense (N_FEATURES,) coef and intercept."""
    from sklearn.linear_model import LogisticRegression

    df = np.bincount(X.indices, minlength=X.shape[1])
    cols = np.flatnonzero(df >= MIN_DF)
    if len(cols) == 0:
        cols = np.flatnonzero(df >= 1)
    Xc = X[:, cols]
    coef = np.zeros(X.shape[1], dtype=np.float64)
    if len(np.unique(y)) < 2:
        b = 10.0 if y[0] == 1 else -10.0
        return coef, b
    clf = LogisticRegression(C=C, solver="liblinear", max_iter=1000, tol=1e-4, random_state=seed)
    clf.fit(Xc, y)
    coef[cols] = clf.coef_.ravel()
    return coef, float(clf.intercept_[0])


def _auc_ap(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    return float(roc_auc_score(y, p)), float(average_precision_score(y, p))


def _folds(y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    strata = groups * 2 + y
    counts = np.bincount(strata)
    n = min(n_splits, int(counts[counts > 0].min()))
    if n < 2:
        strata = y
        n = min(n_splits, int(np.bincount(y).min()))
    if n < 2:
        return []
    skf = StratifiedKFold(n_splits=n, shuffle=True, random_state=seed)
    return list(skf.split(np.zeros(len(y)), strata))


def _progress_iter(progress: Callable[[str], None] | None, msg: str) -> None:
    if progress is not None:
        progress(msg)


def load_datasets(
    paths: Sequence[str | pathlib.Path],
) -> list[tuple[str, str, list[str], np.ndarray]]:
    """(signal, source file name, texts, labels) for every training file under ``paths``."""
    out = []
    for signal, f in discover_files(paths):
        texts, y = read_labelled_csv(f)
        out.append((signal, f.name, texts, y))
    return out


def featurize_datasets(
    datasets: Sequence[tuple[str, str, list[str], np.ndarray]],
    feat: Featurizer,
) -> tuple[sp.csr_matrix, dict[str, int]]:
    """Featurise every distinct text of ``datasets`` once: (matrix, text -> row)."""
    uniq: dict[str, int] = {}
    for _, _, texts, _ in datasets:
        for t in texts:
            uniq.setdefault(t, len(uniq))
    return feat.transform(list(uniq)), uniq


def signal_data(
    datasets: Sequence[tuple[str, str, list[str], np.ndarray]],
    signal: str,
    uniq: dict[str, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(rows into the featurised matrix, labels, source-group ids, source names) of a signal."""
    parts = [d for d in datasets if d[0] == signal]
    if not parts:
        raise ValueError(f"no training data for signal {signal}")
    rows = np.concatenate([[uniq[t] for t in d[2]] for d in parts]).astype(np.int64)
    y = np.concatenate([d[3] for d in parts])
    groups = np.concatenate([np.full(len(d[3]), i) for i, d in enumerate(parts)])
    return rows, y, groups, [d[1] for d in parts]


def cv_oof(
    X: sp.csr_matrix,
    y: np.ndarray,
    groups: np.ndarray,
    C: float,
    seed: int = 0,
    n_splits: int = 5,
    progress: Callable[[str], None] | None = None,
    label: str = "",
) -> tuple[np.ndarray, int]:
    """Out-of-fold probabilities (stratified by label x source) and the number of folds."""
    folds = _folds(y, groups, n_splits, seed)
    oof = np.full(len(y), np.nan)
    for k, (tr, te) in enumerate(folds, start=1):
        _progress_iter(progress, f"{label}: cross-validation fold {k}/{len(folds)}")
        w, b = _fit_lr(X[tr], y[tr], C, seed)
        oof[te] = _sigmoid(X[te] @ w + b)
    return oof, len(folds)


def cv_report(
    y: np.ndarray,
    oof: np.ndarray,
    groups: np.ndarray,
    names: Sequence[str],
    threshold: float,
    reject: float,
) -> dict:
    """ROC AUC, average precision and threshold statistics (overall and per source file)."""
    auc, ap = _auc_ap(y, oof)
    per_source = {}
    for i, name in enumerate(names):
        m = groups == i
        a_s, ap_s = _auc_ap(y[m], oof[m])
        per_source[name] = {
            "n": int(m.sum()), "auc": a_s, "average_precision": ap_s,
            "at_threshold": _threshold_stats(y[m], oof[m], threshold),
        }  # fmt: skip
    return {
        "n": int(len(y)),
        "auc": auc,
        "average_precision": ap,
        "at_threshold": _threshold_stats(y, oof, threshold),
        "at_reject": _threshold_stats(y, oof, reject),
        "per_source": per_source,
    }


def train(
    paths: Sequence[str | pathlib.Path],
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    *,
    C: dict[str, float] | None = None,
    n_splits: int = 5,
    wordlist: set[str] | None = None,
    date: str | None = None,
) -> SignalModel:
    """Train one logistic regression per signal on ``<signal>-<source>-train.csv`` files.

    ``paths`` are files or directories.  Thresholds come from ``n_splits``-fold stratified
    cross-validation (out-of-fold scores); the final weights are fitted on all rows.
    Deterministic for a fixed ``seed``.  ``progress`` receives one line per step.
    """
    datasets = load_datasets(paths)
    if not datasets:
        raise ValueError("no <signal>-<source>-train.csv files found")
    have = {d[0] for d in datasets}
    missing = [s for s in SIGNALS if s not in have]
    if missing:
        raise ValueError(f"no training data for signal(s): {', '.join(missing)}")
    C = {**DEFAULT_C, **(C or {})}
    for signal, name, texts, y in datasets:
        _progress_iter(
            progress, f"read {name}: {len(texts)} rows, {int(y.sum())} positive ({signal})"
        )
    lexicon, protected = build_lexicon(datasets, wordlist)
    _progress_iter(
        progress, f"lexicon: {len(lexicon)} known-clean words, {len(protected)} protected"
    )
    feat = Featurizer(lexicon, protected)
    _progress_iter(progress, "featurising the distinct texts")
    X_all, uniq = featurize_datasets(datasets, feat)

    coefs: dict[str, np.ndarray] = {}
    intercepts: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    rejects: dict[str, float] = {}
    report: dict[str, dict] = {}
    sources: list[dict] = []
    for signal in SIGNALS:
        rows, y, groups, names = signal_data(datasets, signal, uniq)
        X = X_all[rows]
        for i, name in enumerate(names):
            m = groups == i
            sources.append(
                {"signal": signal, "file": name, "rows": int(m.sum()), "positive": int(y[m].sum())}
            )
        oof, n_folds = cv_oof(X, y, groups, C[signal], seed, n_splits, progress, signal)
        _progress_iter(progress, f"{signal}: fitting on all {len(y)} rows")
        coefs[signal], intercepts[signal] = _fit_lr(X, y, C[signal], seed)
        if n_folds:
            t, r = choose_thresholds(y, oof, groups=groups)
            report[signal] = cv_report(y, oof, groups, names, t, r)
            report[signal]["operating_points"] = operating_points(y, oof, groups)
        else:
            t, r = 0.5, 1.0
            report[signal] = {"n": int(len(y))}
        report[signal].update({"folds": n_folds, "C": C[signal]})
        thresholds[signal], rejects[signal] = t, r
        _progress_iter(progress, f"{signal}: threshold {t:.3f}, reject {r:.3f}")

    metadata = {
        "seed": seed,
        "sources": sources,
        "cv": report,
        "trainer": "LogisticRegression(solver=liblinear) per signal on hashed word 1-2-grams "
        "+ char 3-5-grams of out-of-lexicon words",
        "max_hold_rate": MAX_HOLD_RATE,
        "max_source_hold_rate": MAX_SOURCE_HOLD_RATE,
        "reject_precision": REJECT_PRECISION,
        "max_reject_rate": MAX_REJECT_RATE,
        "max_source_reject_rate": MAX_SOURCE_REJECT_RATE,
    }
    model = _assemble(
        coefs, intercepts, thresholds, rejects, lexicon, metadata, date=date,
        protected=protected,
    )  # fmt: skip
    _progress_iter(progress, f"model {model.version}: {len(model.indices)} non-zero features")
    return model


# --------------------------------------------------------------------------------------
# Fine-tuning on the site's own moderator decisions
# --------------------------------------------------------------------------------------


def fine_tune(
    model: SignalModel,
    examples: Sequence[tuple[str, str, int]],
    seed: int = 0,
    *,
    epochs: int = 10,
    learning_rate: float = 0.5,
    alpha: float = 1e-6,
) -> SignalModel:
    """Warm-start each signal's weights from ``model`` and take a few SGD passes
    (``sklearn.linear_model.SGDClassifier``, log loss) over the site's own decisions.

    ``examples`` are ``(text, signal, label)`` with label 1 for "withdrawn citing a rule linked
    to this signal" and 0 for "approved".  Needs only the shipped model (same hashed feature
    space, same lexicon) - no public training data.  Signals without examples are unchanged;
    thresholds are kept.  Returns a new model with a new version.
    """
    from sklearn.linear_model import SGDClassifier

    by_signal: dict[str, tuple[list[str], list[int]]] = {}
    for text, signal, label in examples:
        _signal_index(signal)
        if label not in (0, 1, True, False):
            raise ValueError(f"label must be 0 or 1, got {label!r}")
        by_signal.setdefault(signal, ([], []))
        by_signal[signal][0].append(text or "")
        by_signal[signal][1].append(int(label))
    if not by_signal:
        raise ValueError("fine_tune needs at least one example")

    feat = Featurizer(model.lexicon, model.protected)
    coefs = {s: model.dense_weights(s) for s in SIGNALS}
    intercepts = {s: float(model.intercepts[i]) for i, s in enumerate(SIGNALS)}
    counts = {}
    for signal in SIGNALS:
        if signal not in by_signal:
            continue
        texts, labels = by_signal[signal]
        X = feat.transform(texts)
        y = np.asarray(labels)
        clf = SGDClassifier(
            loss="log_loss",
            penalty="l2",
            alpha=alpha,
            learning_rate="constant",
            eta0=learning_rate,
            max_iter=epochs,
            shuffle=True,
            random_state=seed,
        )
        _warm_sgd(clf, X, y, coefs[signal], intercepts[signal])
        coefs[signal] = clf.coef_.ravel().astype(np.float64)
        intercepts[signal] = float(clf.intercept_[0])
        counts[signal] = {"n": len(y), "positive": int(y.sum())}

    meta = {
        k: v for k, v in model.metadata.items() if k not in ("cv", "fine_tuned")
    }
    meta["parent_version"] = model.version
    meta["fine_tuned"] = {
        "examples": counts, "seed": seed, "epochs": epochs,
        "learning_rate": learning_rate, "alpha": alpha,
    }  # fmt: skip
    if "cv" in model.metadata:
        meta["parent_cv"] = model.metadata["cv"]
    meta.pop("created", None)
    return _assemble(
        coefs, intercepts, model.thresholds, model.reject_thresholds, model.lexicon, meta,
        protected=model.protected,
    )  # fmt: skip


def _warm_sgd(clf, X, y, w0, b0) -> None:
    """``epochs`` passes of SGDClassifier.partial_fit starting from (w0, b0).

    partial_fit with both classes declared also works when the site only has decisions of one
    kind for a signal (e.g. only withdrawals)."""
    clf.partial_fit(X[:1], y[:1], classes=np.array([0, 1]))  # allocates coef_ / intercept_
    clf.coef_ = w0[None, :].copy()
    clf.intercept_ = np.array([b0], dtype=np.float64)
    for _ in range(clf.max_iter):
        clf.partial_fit(X, y)


# --------------------------------------------------------------------------------------
# The known-words list shipped with the package (training input for the lexicon)
# --------------------------------------------------------------------------------------

SCOWL_NOTICE = """\
# Known English words for Parley's classifier: Debian's wbritish word list (SCOWL), folded to
# lower-case ASCII, possessives removed. SCOWL's notice follows.
#
# Copyright 2000-2011 by Kevin Atkinson
#
# Permission to use, copy, modify, distribute and sell these word lists, the associated
# scripts, the output created from the scripts, and its documentation for any purpose is
# hereby granted without fee, provided that the above copyright notice appears in all copies
# and that both that copyright notice and this permission notice appear in supporting
# documentation. Kevin Atkinson makes no representations about the suitability of this array
# for any purpose. It is provided "as is" without express or implied warranty.
"""


def fold_word(word: str) -> str:
    """Lower-case ASCII form of a dictionary word, as the tokeniser would produce it."""
    w = unicodedata.normalize("NFKD", word.strip())
    w = "".join(c for c in w if not unicodedata.combining(c)).lower()
    if w.endswith("'s"):
        w = w[:-2]
    return w.replace("'", "")


def build_wordlist_file(source: str | pathlib.Path, out: str | pathlib.Path) -> int:
    """Write the gzip word list (deterministic bytes) from a SCOWL list such as
    /usr/share/dict/british-english (Debian package ``wbritish``). Returns the word count."""
    words = set()
    with open(source, encoding="utf-8") as f:
        for line in f:
            w = fold_word(line)
            if re.fullmatch(r"[a-z]+", w):
                words.add(w)
    body = SCOWL_NOTICE + "\n".join(sorted(words)) + "\n"
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(body.encode("utf-8"))
    pathlib.Path(out).write_bytes(buf.getvalue())
    return len(words)
