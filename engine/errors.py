"""One error tree for the whole engine, with stable codes and a location in every error.

    MapperError                    base class; ``code`` and ``str()`` are stable
    ├── SpecError                  load and compile: a mapping file is wrong (file, line, rule id)
    │   ├── SchemaError            M101  the file does not match schemas/mapping-1.schema.json
    │   ├── UnknownFunction        M102  ``fn:`` names no registered function
    │   ├── OverlayError           M103  ``extends`` cannot be resolved or its version does not match
    │   ├── ExpressionError        M104  a JMESPath or Jinja2 expression does not compile
    │   ├── ReferenceError_        M105  ``apply``/``lookup`` names no map or table
    │   └── ConfigError            M106  a routes file, a serve flag or its environment is wrong
    ├── ConversionError            M201  run: a payload cannot be converted (rule id, input path)
    │   ├── RejectedField          M202  the mapping refuses a field or a value on purpose
    │   ├── CoercionError          M203  a value has the wrong type (``as:``) or is missing (``required``)
    │   ├── NoCase                 M204  a ``switch`` found no case and has no ``otherwise``
    │   └── InvalidRequest         M205  the client API itself would refuse the request (engine.validation)
    ├── StreamError                M301  run: a stream cannot be converted (chunk number)
    │   └── SSEDecodeError         M302  the upstream's bytes are not an event stream
    ├── UpstreamError              M401  the upstream failed or answered with an error
    └── StoreError                 M501  the response store cannot be opened, read or written

A ``ConversionError`` may also carry ``api_code``: the code the client API gives the same refusal
(``invalid_type``, ``unknown_parameter``...). Clients get that code in the error body; mapper's own
code stays in ``code`` and in the logs.

Spec errors are found before any payload is seen, so they carry file and line. Run errors carry the
id of the rule that failed and the JSON path of the input it was reading; the path is built while
the exception unwinds (each ``each`` adds its index), so the happy path pays nothing for it.
"""

from __future__ import annotations

from typing import Any


class MapperError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "M000"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


# -- load and compile -------------------------------------------------------------------------


class SpecError(MapperError):
    """A mapping file is wrong. Carries the file, the line and the rule id where known."""

    code = "M100"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        rule: str | None = None,
        expression: str | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.rule = rule
        self.expression = expression
        self.column = column

    @property
    def location(self) -> str:
        where = self.file or "<mapping>"
        if self.line is not None:
            where += f":{self.line}"
        return where

    def __str__(self) -> str:
        rule = f" [{self.rule}]" if self.rule else ""
        text = f"{self.location}: {self.code} {self.message}{rule}"
        if self.expression is not None and self.column is not None:
            # show the failing expression with a caret under the bad token, like jmespath does
            text += f"\n    {self.expression}\n    {' ' * self.column}^"
        return text


class SchemaError(SpecError):
    code = "M101"


class UnknownFunction(SpecError):
    code = "M102"


class OverlayError(SpecError):
    code = "M103"


class ExpressionError(SpecError):
    code = "M104"


class ReferenceError_(SpecError):  # trailing underscore: the builtin ReferenceError is unrelated
    code = "M105"


class ConfigError(SpecError):
    """The proxy's configuration is wrong: a flag, a routes file or an environment variable."""

    code = "M106"

    @property
    def location(self) -> str:
        if self.file is None:
            return "mapper serve"
        return f"{self.file}:{self.line}" if self.line is not None else self.file


class SpecErrors(SpecError):
    """Several spec errors found in one pass; ``errors`` holds them in file order."""

    code = "M100"

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__(f"{len(errors)} error(s) in mapping")
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


# -- run --------------------------------------------------------------------------------------


class ConversionError(MapperError):
    """A payload cannot be converted. ``path`` is the JSON path of the input, ``rule`` the rule id."""

    code = "M201"

    def __init__(self, message: str, *, path: list[str | int] | None = None, rule: str | None = None,
                 param: str | None = None, api_code: str | None = None) -> None:
        super().__init__(message)
        self.path: list[str | int] = path if path is not None else []
        self.rule = rule
        self._param = param
        self.api_code = api_code  # the client API's code for the same refusal, where it has one

    @property
    def client_code(self) -> str:
        """The ``code`` of the error body a client gets: the client API's code, else mapper's."""
        return self.api_code or self.code

    def at(self, *segments: str | int) -> "ConversionError":
        """Prefix the input path while the error unwinds through an enclosing op."""
        self.path[:0] = segments
        return self

    def in_rule(self, rule: str) -> "ConversionError":
        """Name the rule while the error unwinds through it, unless a rule inside already did."""
        if self.rule is None:
            self.rule = rule
        return self

    @property
    def json_path(self) -> str:
        return format_path(self.path)

    @property
    def param(self) -> str | None:
        """The request parameter to name in an OpenAI error body."""
        return self._param if self._param is not None else (self.json_path or None)

    def __str__(self) -> str:
        where = self.json_path or "<root>"
        rule = f" [{self.rule}]" if self.rule else ""
        return f"{where}: {self.code} {self.message}{rule}"


class RejectedField(ConversionError):
    code = "M202"


class CoercionError(ConversionError):
    code = "M203"


class NoCase(ConversionError):
    code = "M204"


class InvalidRequest(ConversionError):
    """A request the client API itself would refuse: a wrong type, an unknown enum value, a number
    out of range, an empty array, a missing required member. ``message``, ``param`` and
    ``api_code`` are in the client API's own words (see ``engine.validation``)."""

    code = "M205"


class StreamError(MapperError):
    """A stream cannot be converted: a chunk that is not JSON, or one the lifecycle cannot accept."""

    code = "M301"

    def __init__(self, message: str, *, chunk: int | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.chunk = chunk
        self.rule = rule

    def __str__(self) -> str:
        where = f"chunk {self.chunk}: " if self.chunk is not None else ""
        rule = f" [{self.rule}]" if self.rule else ""
        return f"{where}{self.code} {self.message}{rule}"


class SSEDecodeError(StreamError, ValueError):
    """The bytes are not a usable event stream: invalid UTF-8, or a frame over the size limit.

    ``offset`` counts bytes from the start of the stream, BOM included: the first invalid byte, or
    how far the stream had been read when the frame passed ``max_frame_bytes``.
    """

    code = "M302"

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} at byte {offset} of the event stream")
        self.reason = reason
        self.offset = offset


class UpstreamError(MapperError):
    """The upstream failed: unreachable, timed out, or answered with an error body."""

    code = "M401"

    def __init__(self, message: str, *, status: int = 502, body: Any = None,
                 headers: dict[str, str] | None = None, error_type: str = "upstream_error",
                 error_code: str = "server_error") -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.error_type = error_type
        self.error_code = error_code  # the code a stream's error event carries


class StoreError(MapperError):
    """The response store (``engine.store``) cannot be opened, read or written."""

    code = "M501"


def error_body(message: str, type: str = "invalid_request_error",  # noqa: A002 - OpenAI's name
               param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """An OpenAI error body: what a client gets for an error, from the proxy or ``mapper convert``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def format_path(path: list[str | int]) -> str:
    """``['input', 3, 'content', 0]`` -> ``input[3].content[0]``."""
    text = ""
    for segment in path:
        if isinstance(segment, int):
            text += f"[{segment}]"
        elif text:
            text += f".{segment}"
        else:
            text = segment
    return text
