"""What every page and form of the web UI is protected by.

- Headers: a Content-Security-Policy that allows scripts, styles, images and connections
  from this origin only (no inline script, no other origin), `frame-ancestors 'none'`, no
  sniffing, no referrer to other sites, and no caching of pages that show a user's data.
- CSRF: every state-changing request carries a token in the form field `csrf` (or the
  header `X-CSRF-Token`). Signed in, the token is an HMAC of the session token, which a
  page of another origin can neither read (HttpOnly cookie) nor compute, and which every
  replica can check without shared state; before signing in (the sign-in form itself) it
  is a random value that must equal the `cyp_csrf` cookie (double submit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from domain.errors import RegistryError

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
FIELD = "csrf"
HEADER = "x-csrf-token"
LOGIN_COOKIE = "cyp_csrf"


class CsrfRefused(RegistryError):
    def __init__(self) -> None:
        super().__init__(
            "DENIED", "This form expired or came from another site. Reload the page and try again."
        )


def session_csrf(session_token: str) -> str:
    digest = hmac.new(session_token.encode(), b"cyp-web-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def check(expected: str | None, given: str | None) -> None:
    """Refuse the request unless it carries the expected token."""
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise CsrfRefused()
