"""Signatures mapper can check: thinking blocks it made, coming back from a client.

Anthropic's thinking blocks carry a ``signature`` that the API verifies when the block is sent
back, so a client (Claude Code) may pass back only what the model really thought. A chat
upstream's ``reasoning_content`` has no signature, so mapper signs the text itself: an HMAC-SHA256
under a per-deployment key. When the block returns, a signature that verifies means the text is
what this deployment's upstream produced, and it may go back upstream as reasoning; any other block
(another model's, or edited) is left out with the reason.

The key is ``$MAPPER_SIGNING_KEY`` when it is set; set it to the same secret on every instance that
serves one client. Without it a random key is made once per process: ``mapper serve`` makes it
before it starts its ``--workers``, so they share it (``ensure_key``), and a restart only means that
earlier thinking blocks are left out instead of passed back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

__all__ = ["KEY_ENV", "ensure_key", "sign", "verify"]

KEY_ENV = "MAPPER_SIGNING_KEY"
_PREFIX = "mapper1."  # the scheme of the signature, so another can follow without ambiguity
_DOMAIN = b"mapper thinking\0"  # a signature of thinking text is good for nothing else


def ensure_key() -> None:
    """Make a random key for this process and its children unless ``$MAPPER_SIGNING_KEY`` holds one."""
    if not os.environ.get(KEY_ENV):
        os.environ[KEY_ENV] = base64.urlsafe_b64encode(os.urandom(32)).decode()


def _key() -> bytes:
    ensure_key()
    return os.environ[KEY_ENV].encode()


def sign(text: str) -> str:
    """The signature of ``text`` under this deployment's key."""
    digest = hmac.new(_key(), _DOMAIN + text.encode(), hashlib.sha256).digest()
    return _PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def verify(text: str, signature: object) -> bool:
    """Whether ``signature`` is this deployment's signature of ``text``."""
    return isinstance(signature, str) and hmac.compare_digest(sign(text), signature)
