"""Structured logs: one JSON line per request, and redaction so that no key reaches a log or a client.

Each request fills a ``RequestLog`` as it goes (route, model, statuses, timings, tokens) and the
app writes it once at the end through the ``mapper.proxy`` logger, with the fields in
``record.fields``; ``JsonLines`` formats any record as one JSON object per line, so aiohttp's own
messages come out the same way. Bodies are not logged unless ``--log-bodies`` asks for them.

``Redactor`` removes secrets from text and JSON: the keys this process knows (proxy keys, held
upstream keys, the client's own key in pass-through mode), anything shaped like a bearer token or
an ``sk-`` key, and the values of fields named like credentials. It guards log lines and the
error messages relayed from upstreams (OpenAI's 401 quotes part of the key it rejected).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, TextIO

import orjson

from ..types import Json
from ..validation.numbers import INT_MAX, INT_MIN

__all__ = ["LOGGER", "JsonLines", "Redactor", "RequestLog", "configure_logging"]

LOGGER = logging.getLogger("mapper.proxy")
REDACTED = "[REDACTED]"
_TOKEN_SHAPES = re.compile(
    r"(?i)(?P<scheme>\bbearer\s+)[^\s\"',;]+"  # Authorization values
    r"|\bsk-[A-Za-z0-9_*.\-]{6,}"  # OpenAI-style keys, masked or not
)
_SECRET_FIELDS = frozenset({"api_key", "apikey", "api-key", "x-api-key", "authorization",
                            "password", "secret", "access_token", "refresh_token"})


MIN_SECRET = 8  # characters: a shorter "key" is indistinguishable from a word, and is not searched
_TOKEN_CHARS = "A-Za-z0-9_\\-"


class Redactor:
    """Removes known secrets and key-shaped strings from text and JSON values.

    A known secret is removed only where it stands as a whole token (not inside a longer run of
    letters, digits, ``_`` and ``-``), and only when it is long enough to be a key: a client key
    ``k`` must not turn "backend" into "bac[REDACTED]end".
    """

    __slots__ = ("secrets", "_pattern")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # longest first, so that a key containing another key is removed whole
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= MIN_SECRET},
                                    key=len, reverse=True))
        self._pattern = re.compile(
            f"(?<![{_TOKEN_CHARS}])(?:{'|'.join(map(re.escape, self.secrets))})(?![{_TOKEN_CHARS}])"
        ) if self.secrets else None

    def with_secret(self, secret: str | None) -> "Redactor":
        """A redactor that also removes ``secret`` (e.g. a client's own key)."""
        if not secret or len(secret) < MIN_SECRET or secret in self.secrets:
            return self
        return Redactor((*self.secrets, secret))

    def text(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:  # the cheap test first: most lines hold no secret
                text = self._pattern.sub(REDACTED, text)
                break
        # the shapes need "sk-" or "bearer": without either (most lines) the regex, which costs
        # ~20 times this check, cannot match
        lowered = text.lower()
        if "sk-" in lowered or "bearer" in lowered:
            return _TOKEN_SHAPES.sub(_shape, text)
        return text

    def json(self, value: Json) -> Json:
        """A copy of ``value`` with every string redacted and credential-named fields blanked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: REDACTED if str(key).lower() in _SECRET_FIELDS and value[key]
                    else self.json(value[key]) for key in value}
        if isinstance(value, list):
            return [self.json(element) for element in value]
        return value


def _shape(match: re.Match[str]) -> str:
    return f"{match.group('scheme')}{REDACTED}" if match.group("scheme") else REDACTED


@dataclass(slots=True)
class RequestLog:
    """What one request did, filled in as it goes, written as one line at the end."""

    request_id: str
    method: str
    path: str
    started: float = field(default_factory=time.perf_counter)
    route: str | None = None
    model: str | None = None
    upstream_model: str | None = None
    stream: bool | None = None
    status: int | None = None
    upstream_status: int | None = None
    first_byte_at: float | None = None
    upstream_sent: float | None = None  # when the request went upstream
    upstream_at: float | None = None  # when the upstream's response head arrived
    usage: Json = None
    error: str | None = None
    dropped: list[str] = field(default_factory=list)
    client_disconnected: bool = False
    stored: bool = False  # the response went into the response store
    store_error: str | None = None  # ... or could not
    bodies: dict[str, Json] = field(default_factory=dict)  # only with --log-bodies

    def fields(self) -> dict[str, Json]:
        """The log line's fields; absent values are left out."""
        now = time.perf_counter()
        line: dict[str, Json] = {
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "model": self.model,
            "upstream_model": self.upstream_model if self.upstream_model != self.model else None,
            "stream": self.stream,
            "status": self.status,
            "upstream_status": self.upstream_status,
            "duration_ms": round((now - self.started) * 1000, 1),
            "ttfb_ms": (round((self.first_byte_at - self.started) * 1000, 1)
                        if self.first_byte_at is not None else None),
            "upstream_ms": (round((self.upstream_at - self.upstream_sent) * 1000, 1)
                            if self.upstream_at is not None and self.upstream_sent is not None
                            else None),
            "tokens": tokens(self.usage),
            "error": self.error,
            "dropped": self.dropped or None,
            "client_disconnected": self.client_disconnected or None,
            "stored": self.stored or None,
            "store_error": self.store_error,
            **self.bodies,
        }
        return {name: value for name, value in line.items() if value is not None}


def tokens(usage: Json) -> dict[str, int] | None:
    """``{"input", "output", "total"}`` from Responses or Chat usage."""
    if not isinstance(usage, dict):
        return None
    found = {
        "input": usage.get("input_tokens", usage.get("prompt_tokens")),
        "output": usage.get("output_tokens", usage.get("completion_tokens")),
        "total": usage.get("total_tokens"),
    }
    found = {name: count for name, count in found.items() if isinstance(count, int)}
    return found or None


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, event, then the record's ``fields``."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc)
                            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        try:
            text = orjson.dumps(line, default=str)
        except TypeError:  # an integer past 64 bits (an upstream's usage, say): write it as text
            text = orjson.dumps(_writable(line), default=str)
        return self.redactor.text(text.decode())


def _writable(value: Any) -> Any:
    """``value`` with every integer orjson cannot write turned into its decimal text."""
    if isinstance(value, dict):
        return {key: _writable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_writable(item) for item in value]
    if value.__class__ is int and not INT_MIN <= value <= INT_MAX:
        return str(value)
    return value


def configure_logging(redactor: Redactor, stream: TextIO | None = None,
                      level: int = logging.INFO) -> None:
    """JSON lines on stderr for mapper's and aiohttp's loggers (not the root logger)."""
    # the logging module's documented optimisations: the lines carry no caller, thread or
    # process fields, so the per-record stack walk and look-ups (a third of a line's cost) go
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines(redactor))
    for name in ("mapper", "aiohttp"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("aiohttp.access").disabled = True  # the proxy writes its own request line
