"""Who may call the proxy, and which key goes upstream.

Two modes, chosen by whether proxy keys are configured:

* **pass-through** (no proxy keys): the client's ``Authorization`` header goes upstream as it came,
  so each client uses its own provider key and the proxy holds none;
* **held key** (``--proxy-key-env``): clients must present one of the proxy keys as a bearer
  token, or get an OpenAI-shaped 401; the client's key never goes upstream.

A client may present its key as ``Authorization: Bearer KEY`` or, as Anthropic's clients do
(Claude Code with ``ANTHROPIC_API_KEY``), as ``x-api-key: KEY``; both count the same in either mode.

Either way a route that holds an upstream key (``--api-key-env``, ``api_key_env``) sends that key,
in the header the mapping's ``auth_header`` option names (``Authorization: Bearer`` by default);
a route whose upstream URL carries credentials (``http://user:pw@host``) sends them as
``Authorization: Basic`` instead (the two together are refused at start-up).
Keys are compared in constant time and never put in a message.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from .http import HttpError, Scope, error_body, header
from .routes import Route

__all__ = ["Auth", "client_authorization"]

_MISSING = ("You didn't provide an API key. You need to provide your API key in an Authorization "
            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
_WRONG = "Incorrect API key provided."


@dataclass(frozen=True, slots=True)
class Auth:
    """The proxy's auth policy; ``proxy_keys`` empty means pass-through."""

    proxy_keys: tuple[bytes, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, proxy_keys: tuple[str, ...]) -> "Auth":
        return cls(tuple(key.encode() for key in proxy_keys))

    @property
    def held(self) -> bool:
        return bool(self.proxy_keys)

    def check(self, scope: Scope) -> str | None:
        """The client's ``Authorization`` value; in held-key mode a 401 unless it holds a proxy key."""
        authorization = client_authorization(scope)
        if not self.held:
            return authorization
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HttpError(401, error_body(_MISSING, "invalid_request_error", code="missing_api_key"))
        presented = token.encode()
        accepted = False
        for key in self.proxy_keys:  # no early exit: the time taken does not say which key matched
            accepted |= hmac.compare_digest(presented, key)
        if not accepted:
            raise HttpError(401, error_body(_WRONG, "invalid_request_error", code="invalid_api_key"))
        return None  # a proxy key is the proxy's secret: it never goes upstream

    def upstream_headers(self, route: Route, client_authorization: str | None) -> dict[str, str]:
        """The header(s) carrying a key upstream: the route's held key, else the client's own.

        The header is ``Authorization: Bearer`` unless the mapping's ``auth_header`` option names
        another (Azure's ``api-key``); a client key in another scheme than Bearer goes as it came.
        """
        if route.api_key:
            return route.key_headers(route.api_key)
        if route.basic_auth:  # credentials in the upstream URL: the route's own, like a held key
            return {"authorization": route.basic_auth}
        if not client_authorization:
            return {}
        scheme, _, token = client_authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return route.key_headers(token.strip())
        return {"authorization": client_authorization}


def client_authorization(scope: Scope) -> str | None:
    """The key the client presented, as an ``Authorization`` value: its own, or ``x-api-key`` as
    a bearer token."""
    authorization = header(scope, b"authorization")
    if authorization:
        return authorization
    api_key = (header(scope, b"x-api-key") or "").strip()
    return f"Bearer {api_key}" if api_key else None
