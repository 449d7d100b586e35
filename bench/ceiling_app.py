"""The ceiling: a minimal Flask app that returns one fixed ~20 KB JSON document.

Run under the same gunicorn settings as Parley (``gunicorn --chdir bench ceiling_app:app``),
it is the most requests/s this machine, this WSGI server and this load generator can do with
Flask in the loop; Parley's figures are reported as a fraction of it.
"""

from __future__ import annotations

import json

from flask import Flask, Response

app = Flask(__name__)

_COMMENTS = [
    {
        "id": i,
        "parent_id": None,
        "author": {"id": 1000 + i, "display_name": f"Reader {1000 + i}"},
        "body_html": "<p>" + ("The council's figures don't add up for the town. " * 3) + "</p>",
        "status": "published",
        "created_at": "2026-11-23T01:00:00Z",
        "edited_at": None,
        "replies": [],
    }
    for i in range(60)
]
DOCUMENT = json.dumps(
    {
        "article": {"key": "ceiling", "title": "Ceiling", "url": "https://news.example/ceiling"},
        "comments": _COMMENTS,
        "page": 1,
        "per_page": 60,
        "total_top_level": 60,
    }
).encode()


@app.get("/")
def document() -> Response:
    return Response(DOCUMENT, mimetype="application/json")


if __name__ == "__main__":  # pragma: no cover - for a quick look
    print(len(DOCUMENT), "bytes")
