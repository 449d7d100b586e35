"""Run Parley under gunicorn on the test database, and talk to it over real HTTP.

Used by the slow tests that need real processes: many writers at once, two moderators
racing, and a server killed with SIGKILL mid-load.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """gunicorn wsgi:app with 2 workers on 127.0.0.1, in its own process group."""

    def __init__(self, database_url: str, log: Path, workers: int = 2, **settings: str) -> None:
        self.port = free_port()
        self.log = log
        self.env = {
            **os.environ,
            "PARLEY_DATABASE_URL": database_url,
            "PARLEY_SECRET_KEY": "live-test-secret",
            "PARLEY_RATELIMIT_ENABLED": "false",
            "PARLEY_ARGON2_PROFILE": "fast",
            **{f"PARLEY_{k}": v for k, v in settings.items()},
        }
        self.args = [
            sys.executable, "-m", "gunicorn", "--workers", str(workers),
            "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "2", "wsgi:app",
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Gunicorn:
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                self.args, cwd=ROOT, env=self.env, stdout=out, stderr=out,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, _, _ = Client(self.port).request("GET", "/api/v1/rules")
                if status == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not answer within 30 s")

    def kill(self) -> None:
        """SIGKILL the master and every worker at once: no chance to finish anything."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


class Client:
    """A keep-alive HTTP client with a cookie jar and the CSRF token, like a browser's JS."""

    def __init__(self, port: int, timeout: float = 30) -> None:
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}
        self.csrf: str | None = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any, dict]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        headers = {"Accept": "application/json"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if method != "GET" and self.csrf:
            headers["X-CSRFToken"] = self.csrf
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        for value in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(value)
            for key, morsel in cookie.items():
                self.cookies[key] = morsel.value
        payload = json.loads(raw) if raw and raw[:1] in (b"{", b"[") else raw
        if isinstance(payload, dict) and "csrf_token" in payload:
            self.csrf = payload["csrf_token"]
        return response.status, payload, dict(response.headers)

    def signin(self, email: str, password: str) -> None:
        self.request("GET", "/api/v1/auth/session")
        status, body, _ = self.request(
            "POST", "/api/v1/auth/signin", {"email": email, "password": password}
        )
        assert status == 200, body

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
