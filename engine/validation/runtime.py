"""What the generated validators call at run time: the failure they raise, and two small helpers.

A generated check raises ``Invalid`` at the first value the client API would refuse, with the
path relative to the function that found it; each enclosing call prefixes its own segment while
the exception unwinds, so a request that passes pays nothing for paths. ``Invalid.error()``
turns the finished failure into the ``InvalidRequest`` that callers see, with OpenAI's sentence.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest, format_path
from .wording import INT64_MAX, INT64_MIN, MESSAGES


class Invalid(Exception):
    """A refused value: OpenAI's error ``code``, where (``path``), the value, and what was expected."""

    __slots__ = ("code", "path", "value", "detail")

    def __init__(self, code: str, path: list[str | int], value: Any = None, detail: Any = None) -> None:
        super().__init__(code)
        self.code = code
        self.path = path
        self.value = value
        self.detail = detail

    def error(self) -> InvalidRequest:
        param = format_path(self.path)
        message = MESSAGES[self.code](param, self.value, self.detail)
        return InvalidRequest(message, path=list(self.path), param=param or None,
                              api_code=self.code, rule="validation")


def check_integral(value: float, path: list[str | int], expected: str) -> None:
    """A float where the schema says integer: ``16.0`` passes; ``1.5`` does not, nor does a
    number past the 64-bit range (orjson reads integer literals that large as floats, and
    ``as: integer`` would make them an int that orjson cannot write)."""
    if not value.is_integer():
        raise Invalid("invalid_type", path, value, expected)
    if value > INT64_MAX:
        raise Invalid("integer_above_max_value", path, value, ("<=", INT64_MAX))
    if value < INT64_MIN:
        raise Invalid("integer_below_min_value", path, value, (">=", INT64_MIN))


def most_relevant(failures: tuple[Invalid, ...]) -> Invalid:
    """Of the failures of union members that all refused a value, the one to report.

    That is the failure found deepest in the value: its member got furthest, so it is most likely
    the one the client meant; a missing required member counts for less than a wrong value at the
    same depth. On a tie the earlier member wins.
    """
    return max(failures, key=_relevance)


def _relevance(failure: Invalid) -> tuple[int, bool]:
    return len(failure.path), failure.code != "missing_required_parameter"
