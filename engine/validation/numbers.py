"""Numbers JSON allows but mapper cannot carry: integers past 64 bits, NaN and infinity.

JSON puts no limit on a number. orjson, which reads and writes every payload here, does: it writes
integers from -2**63 to 2**64 - 1 and raises ``TypeError`` on any other, it reads a longer integer
literal as a float (``100000000000000000000000000000`` becomes ``1e+29``), and it refuses ``NaN``
and ``Infinity`` (which are not JSON) when reading, and writes them as ``null``. So a float read
from a longer literal is harmless until a rule turns it into an integer (``as: integer``): the
int it makes cannot be written, and the answer fails long after the value was read.

Where such values come from and what stops them:

* a client's request: ``orjson`` refuses ``NaN``/``Infinity`` (a 400, invalid JSON); request
  validation refuses a number past the 64-bit range wherever the client API expects an integer
  (``runtime.check_integral``), which covers every field a mapping reads ``as: integer``; with
  validation off, the proxy refuses the request when its conversion cannot be written
  (``uncarriable_request``);
* an upstream's answer: a mapping reads its integers (the token counts in ``usage``) with
  ``as: integer``, which refuses a value past the 64-bit range (``engine.ops``); the answer is then
  a 502, or a stream fails with an error event, not a 500;
* the proxy's log line, which may hold anything: ``engine.proxy.logs`` writes such values as text.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConversionError, format_path
from .wording import INT64_MAX

INT_MIN, INT_MAX = -(2 ** 63), 2 ** 64 - 1  # what orjson writes as an integer
FLOAT_INT_LIMIT = 2.0 ** 63  # an integral float this large came from a literal past int64


def first_uncarriable(value: Any, path: list[str | int] | None = None) -> tuple[list[str | int], Any] | None:
    """The path and value of the first number in ``value`` that cannot be carried as written:
    an int orjson cannot write, a non-finite float, or an integral float past the 64-bit range."""
    path = [] if path is None else path
    kind = value.__class__
    if kind is dict:
        for key, item in value.items():
            found = first_uncarriable(item, [*path, key])
            if found is not None:
                return found
    elif kind is list:
        for index, item in enumerate(value):
            found = first_uncarriable(item, [*path, index])
            if found is not None:
                return found
    elif kind is int:
        if not INT_MIN <= value <= INT_MAX:
            return path, value
    elif kind is float:
        if not math.isfinite(value) or (value.is_integer() and abs(value) >= FLOAT_INT_LIMIT):
            return path, value
    return None


def uncarriable_request(body: Any) -> ConversionError:
    """The refusal of a client request whose conversion holds an integer orjson cannot write.

    Request validation refuses such a number where the client API expects an integer; this is
    for a mapping that turned validation off (``validate_requests: false``) and made one anyway.
    """
    found = first_uncarriable(body)
    path, value = found if found is not None else ([], None)
    param = format_path(path) or None
    return ConversionError(
        f"Invalid '{param}': integer above maximum value. Expected a value <= {INT64_MAX}, but got "
        f"{value!r} instead." if param else "the request holds a number past the 64-bit range",
        path=path, param=param, rule="numbers", api_code="integer_above_max_value")
