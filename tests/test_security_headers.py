"""Security headers on every response; CORS only for configured newsroom origins."""

from tests.conftest import Api


def test_headers_on_api_and_pages(app, api: Api) -> None:
    page = app.test_client().get("/rules")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'self'" in csp and "object-src 'none'" in csp
    # Pages get a fresh nonce each time; data (JSON, errors) may load and run nothing at all.
    assert app.test_client().get("/rules").headers["Content-Security-Policy"] != csp
    for data in (api.get("/rules"), api.get("/no-such-thing")):
        assert (
            data.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'self'"
        )
    for response in (page, api.get("/rules"), api.get("/no-such-thing")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert "Strict-Transport-Security" not in response.headers  # development


def test_frame_ancestors_and_cors_follow_config(app) -> None:
    app.config["FRAME_ANCESTORS"] = ["https://www.paper.example"]
    app.config["CORS_ORIGINS"] = ["https://www.paper.example"]
    client = app.test_client()
    ok = client.get("/api/v1/rules", headers={"Origin": "https://www.paper.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://www.paper.example"
    assert ok.headers["Access-Control-Allow-Credentials"] == "true"
    assert (
        "frame-ancestors 'self' https://www.paper.example" in ok.headers["Content-Security-Policy"]
    )
    evil = client.get("/api/v1/rules", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in evil.headers
    preflight = client.options(
        "/api/v1/articles/x/comments",
        headers={"Origin": "https://www.paper.example", "Access-Control-Request-Method": "POST"},
    )
    assert "X-CSRFToken" in preflight.headers["Access-Control-Allow-Headers"]


def test_hsts_in_production(app, tmp_path) -> None:
    from comments import create_app

    prod = create_app(
        {
            "ENV": "production",
            "SECRET_KEY": "s3cret-for-test",
            "DATABASE_URL": app.config["DATABASE_URL"],
        }
    )
    response = prod.test_client().get("/api/v1/rules")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    with prod.app_context():
        from comments.extensions import db

        db.engine.dispose()
