"""Helpers for the /api tests: sign in, call with a bearer token, read the envelope."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import psycopg


def login(url: str, username: str, password: str, **kw: Any) -> httpx.Response:
    return httpx.post(
        f"{url}/api/auth/login", json={"username": username, "password": password}, **kw
    )


def token_of(url: str, username: str, password: str) -> str:
    answer = login(url, username, password)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["token"]


def call(url: str, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
    headers = dict(kw.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, f"{url}{path}", headers=headers, timeout=30, **kw)


def refused(answer: httpx.Response, status: int, code: str) -> None:
    """An envelope error with this status and code."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["success"] is False, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def history_text(database_url: str) -> str:
    """The whole history view (the audit log) as one text."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT to_jsonb(h)::text FROM history h ORDER BY position")
        return "\n".join(row[0] for row in rows)


def history(database_url: str, kind: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT to_jsonb(h) FROM history h WHERE type = %s ORDER BY position", (kind,)
        )
        return [row[0] for row in rows]
