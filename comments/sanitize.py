"""Turn untrusted comment text into safe HTML, and safe HTML back into plain text.

This is the only place where reader-supplied text becomes markup. Any comment HTML that is
stored and later served with ``|safe`` must have come out of :func:`sanitize`.

Pipeline (two nh3 passes, everything else is string work on nh3's normalised output):

1. Normalise: CRLF/CR -> LF; drop NULs, C0/C1 control characters (except ``\\n``/``\\t``),
   lone surrogates and bidi embedding/override/isolate controls.
2. nh3 pass 1 parses the text as an HTML fragment with the allow-list. Its output is
   well-formed, attribute values are double-quoted, and ``<`` in text is escaped, so it can
   be tokenised with a regex.
3. A small state machine turns newlines into ``<p>``/``<br>`` and turns bare URLs in text
   (outside links) into links.
4. nh3 pass 2 re-parses the result. This is the safety gate for everything step 3 emitted,
   and it repairs DOM shapes that pass 1 can serialise but a parser would not rebuild the
   same way (e.g. ``<a>`` nested in ``<a>`` via a stripped ``<table>``), so the stored HTML
   is a fixed point of ``nh3.clean`` with the same allow-list.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import nh3

__all__ = ["ALLOWED_TAGS", "ALLOWED_URL_SCHEMES", "LINK_REL", "sanitize", "to_plain_text"]

ALLOWED_TAGS: frozenset[str] = frozenset({"b", "strong", "i", "em", "blockquote", "p", "br", "a"})
ALLOWED_URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow ugc noopener"

# Elements whose *content* is dropped along with the tag. nh3 only does this for
# script/style by default; for the others the text would otherwise surface as visible
# comment text (e.g. the body of an <iframe srcdoc> fallback, <noscript>, <svg><script>).
_CLEAN_CONTENT_TAGS = frozenset(
    {
        "script",
        "style",
        "iframe",
        "noscript",
        "noembed",
        "noframes",
        "template",
        "textarea",
        "title",
        "xmp",
        "object",
        "applet",
        "svg",
        "math",
        "plaintext",
    }
)

_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(_CLEAN_CONTENT_TAGS),
    # The explicit "*" entry matters: without it nh3/ammonia keeps its default generic
    # attributes ("lang", "title") on every allowed tag.
    attributes={"a": {"href"}, "*": set()},
    url_schemes=set(ALLOWED_URL_SCHEMES),
    link_rel=LINK_REL,
    # Relative hrefs ("/admin", "//evil.example", "java\u200bscript:...") have no scheme to
    # check against the allow-list; a comment has no business linking relative to our site.
    url_relative="deny",
    strip_comments=True,
)

# Characters removed before parsing:
# - C0/C1 controls other than \t and \n (\r is normalised first): invisible, and some
#   (NUL, \x0b, \x0c) are handled differently by different parsers and mail clients.
# - lone surrogates: a Python str may hold them, but nh3 raises UnicodeEncodeError.
# - bidi embeddings/overrides/isolates (U+202A-U+202E, U+2066-U+2069): they have scope, so
#   an unbalanced one in a comment reorders text after it in plain-text contexts (notices,
#   excerpts, e-mail subjects) and is the classic way to spoof a URL or file name. The
#   scope-less marks LRM/RLM/ALM, which RTL writers do use, are kept.
_DROP_CHARS_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NEWLINE_RE = re.compile(r"\r\n?")

# "<https://example.com>" is how people quote URLs in e-mail; the HTML parser would read it
# as a tag named "https:" and the URL would vanish. Escaping that one "<" only ever turns
# would-be markup into text, never the other way round.
_ANGLE_URL_RE = re.compile(r"<(?=(?:https?://|www\.))", re.IGNORECASE)

# A tag in nh3's *output*: lower-case name, attribute values always double-quoted with '"'
# escaped, so [^"]* cannot run past the end of a value.
_TAG_RE = re.compile(r'<(/?)([a-z][a-z0-9]*)((?:\s+[^\s"\'>/=]+(?:="[^"]*")?)*)\s*/?>')
_HREF_RE = re.compile(r'\shref="')

# An <a> that nh3 left without an href (it only ever adds our rel); see sanitize().
_DEAD_LINK_START = f'<a rel="{LINK_REL}">'
_DEAD_LINK_RE = re.compile(re.escape(_DEAD_LINK_START) + r"(.*?)</a>", re.DOTALL)

# Paragraph break: a blank line, i.e. two newlines with only spaces/tabs between them (any
# further blank lines and indentation belong to the same break).
_PARA_BREAK_RE = re.compile(r"\n[^\S\n]*\n\s*")

# Bare URLs in (unescaped) text. The lookbehind stops "xhttp://", "user@www.example.com" and
# "https://a.example/www.b" from starting a second link. The body stops at whitespace, at
# characters that are never part of a URL typed in prose (<>"'`), and at zero-width /
# formatting characters, which would otherwise hide part of the link text.
_URL_RE = re.compile(
    r"(?<![\w@/.:+\-])(?:https?://|www\.)"
    r"[^\s<>\"'`\u00ad\u200b-\u200f\u2028-\u202f\u2060-\u206f\ufeff]+",
    re.IGNORECASE,
)
# After trimming punctuation there must be something host-like after the prefix.
_URL_OK_RE = re.compile(r"(?:https?://|www\.)[\w\[]", re.IGNORECASE)
_TRAILING_PUNCT = frozenset(".,:;!?'\"*\u2026")
_CLOSERS = {")": "(", "]": "[", "}": "{"}


def _trim_url(url: str) -> str:
    """Drop sentence punctuation from the end of a bare URL.

    A closing bracket is kept when it balances an opening one inside the URL, so
    ``https://en.wikipedia.org/wiki/Foo_(bar)`` survives but ``(see https://x.example)``
    does not swallow the ``)``. Counts are kept incrementally: "http://x" followed by
    thousands of ")" must stay linear.
    """
    counts = {c: url.count(c) for c in "()[]{}"}
    end = len(url)
    while end:
        ch = url[end - 1]
        if ch in _TRAILING_PUNCT:
            end -= 1
        elif ch in _CLOSERS and counts[_CLOSERS[ch]] < counts[ch]:
            counts[ch] -= 1
            end -= 1
        else:
            break
    return url[:end]


def _linkify(text: str) -> str:
    """Escape plain ``text`` and wrap the bare URLs in it in ``<a href>``."""
    out: list[str] = []
    pos = 0
    for m in _URL_RE.finditer(text):
        url = _trim_url(m.group())
        if not _URL_OK_RE.match(url):
            continue
        start = m.start()
        href = url if url[:4].lower() == "http" else "https://" + url
        out.append(html.escape(text[pos:start], quote=False))
        # rel is added by nh3 pass 2; quote=True so a '"' can never end the attribute early.
        out.append(f'<a href="{html.escape(href, quote=True)}">{html.escape(url, quote=False)}</a>')
        pos = start + len(url)
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


class _Paragrapher:
    """Rebuild nh3 pass-1 output with newlines turned into paragraphs and line breaks.

    Inline elements are opened lazily (only when content arrives) and re-opened in each new
    paragraph, so ``<b>a\\n\\nb</b>`` becomes ``<p><b>a</b></p><p><b>b</b></p>`` and empty
    ``<p></p>`` / leading or trailing ``<br>`` never appear. A ``<p>`` typed by the author is
    just a paragraph break; ``<blockquote>`` is a block with its own paragraphs.
    """

    __slots__ = ("out", "para_open", "stack", "real", "emitted", "pending_br", "saved")

    def __init__(self) -> None:
        self.out: list[str] = []
        self.para_open = False
        # Every open inline element as (name, start tag), so end tags can be matched. The
        # start tag is "" for elements we drop: a link whose href nh3 removed (no dead <a>),
        # and an element nested in one of the same name (<b><b> looks like <b>). Dropping the
        # latter keeps re-opening per paragraph O(5), not O(depth): "<b>" * n followed by n
        # blank lines would otherwise blow up to n * n tags.
        self.stack: list[tuple[str, str]] = []
        self.real: list[int] = []  # indexes into stack of elements we do emit (at most 5)
        self.emitted = 0  # how many of self.real have their start tag in this paragraph
        self.pending_br = 0
        self.saved: list[tuple[list[tuple[str, str]], list[int]]] = []  # outside blockquotes

    def _content(self) -> None:
        if not self.para_open:
            self.out.append("<p>")
            self.para_open = True
        elif self.pending_br:
            self.out.append("<br>" * self.pending_br)
        self.pending_br = 0
        for idx in self.real[self.emitted :]:
            self.out.append(self.stack[idx][1])
        self.emitted = len(self.real)

    def _close_para(self) -> None:
        if self.para_open:
            for idx in reversed(self.real[: self.emitted]):
                self.out.append(f"</{self.stack[idx][0]}>")
            self.out.append("</p>")
            self.para_open = False
        self.emitted = 0
        self.pending_br = 0

    def _in_link(self) -> bool:
        return any(self.stack[idx][0] == "a" for idx in self.real)

    def text(self, raw: str) -> None:
        raw = html.unescape(raw)
        for i, part in enumerate(_PARA_BREAK_RE.split(raw)):
            if i:
                self._close_para()
            for j, line in enumerate(part.split("\n")):
                if j and self.para_open:
                    self.pending_br += 1
                if line.strip():
                    self._content()
                    self.out.append(
                        html.escape(line, quote=False) if self._in_link() else _linkify(line)
                    )
                elif line and self.para_open and not self.pending_br:
                    # Whitespace between two inline elements is meaningful ("<b>a</b> <i>b</i>").
                    self.out.append(line)

    def _push(self, name: str, attrs: str, raw: str) -> None:
        dead_link = name == "a" and not _HREF_RE.search(attrs)
        if dead_link or any(self.stack[idx][0] == name for idx in self.real):
            raw = ""
        if raw:
            self.real.append(len(self.stack))
        self.stack.append((name, raw))

    def _pop(self, name: str) -> None:
        for k in range(len(self.stack) - 1, -1, -1):
            if self.stack[k][0] == name:
                break
        else:
            return  # stray end tag; nh3 output has none, but never trust a tokenizer
        while len(self.stack) > k:
            top = len(self.stack) - 1
            if self.real and self.real[-1] == top:
                if len(self.real) <= self.emitted:
                    self.out.append(f"</{self.stack[top][0]}>")
                    self.emitted -= 1
                self.real.pop()
            self.stack.pop()

    def tag(self, closing: bool, name: str, attrs: str, raw: str) -> None:
        if name in ("b", "strong", "i", "em", "a"):
            if closing:
                self._pop(name)
            else:
                self._push(name, attrs, raw)
        elif name == "br":
            if self.para_open:
                self.pending_br += 1
        elif name == "p":
            self._close_para()
        elif name == "blockquote":
            self._close_para()
            if not closing:
                self.out.append("<blockquote>")
                self.saved.append((self.stack, self.real))
                self.stack, self.real = [], []
            elif self.saved:
                self.out.append("</blockquote>")
                self.stack, self.real = self.saved.pop()

    def finish(self) -> str:
        self._close_para()
        self.out.append("</blockquote>" * len(self.saved))
        return "".join(self.out)


def sanitize(text: str) -> str:
    """Turn an untrusted comment body, as the author typed it, into safe HTML.

    The input is treated as text that may contain a little HTML. The result contains only
    ``ALLOWED_TAGS``; the only attributes are ``href`` on ``<a>`` (http, https or mailto
    only, absolute) and ``rel="nofollow ugc noopener"`` on every ``<a>``. Other tags are
    removed (their text kept, except for script/style-like elements whose content is
    dropped). Blank lines separate ``<p>`` paragraphs, single newlines become ``<br>``, and
    bare ``http(s)://`` / ``www.`` URLs outside existing links become links. Text such as
    ``3 < 5`` is kept as escaped text.

    The output is safe to store and serve as-is, and ``nh3.clean`` with the same allow-list
    returns it unchanged. Never raises for any ``str``; NULs, control characters other than
    newline and tab, lone surrogates and bidi override/isolate controls are removed.
    """
    text = _NEWLINE_RE.sub("\n", text)
    text = _DROP_CHARS_RE.sub("", text).strip()
    if not text:
        return ""
    text = _ANGLE_URL_RE.sub("&lt;", text)
    first = _CLEANER.clean(text)

    para = _Paragrapher()
    pos = 0
    for m in _TAG_RE.finditer(first):
        if m.start() > pos:
            para.text(first[pos : m.start()])
        para.tag(m.group(1) == "/", m.group(2), m.group(3), m.group())
        pos = m.end()
    if pos < len(first):
        para.text(first[pos:])
    out = _CLEANER.clean(para.finish())
    if _DEAD_LINK_START in out:
        # A bare URL that our regex took for a link but nh3's URL parser rejects
        # ("http://[bad", "http://a:99999999") comes back as an <a> with rel and no href.
        # Such anchors can only come from _linkify (pass-1 ones were unwrapped), hold only
        # text, and cannot nest after pass 2, so a non-greedy match is exact.
        out = _DEAD_LINK_RE.sub(r"\1", out)
    return out


_BLOCK_TAGS = frozenset({"p", "blockquote", "div", "li", "ul", "ol", "h1", "h2", "h3", "pre"})
_INVISIBLE_TAGS = frozenset({"script", "style", "template", "title", "head"})
_BLANK_LINES_RE = re.compile(r"\n{3,}")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE_TAGS:
            self.skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def to_plain_text(html: str) -> str:
    """Return the visible text of sanitised HTML, for notices, excerpts and search.

    Tags are removed and entities decoded; ``<br>`` becomes a newline and paragraphs /
    blockquotes are separated by a blank line. The result is *plain text*: it may contain
    ``<`` or ``&`` (decoded from ``&lt;``/``&amp;``), so it must be escaped again wherever
    it is put into HTML.
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts).replace("\u00a0", " ")
    # rstrip per line rather than a regex: "[ \t]+\n" backtracks quadratically on long runs.
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = _BLANK_LINES_RE.sub("\n\n", text)
    return text.strip()
