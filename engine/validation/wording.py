"""OpenAI's words for a refused request: the ``message`` of each error ``code``, and type descriptions.

The sentences follow the ones OpenAI's API answers with (quoted in public bug reports and in
conformance tests recorded against the live API), for example::

    invalid_type                Invalid type for 'tool_choice': expected one of one of 'none', 'auto',
                                or 'required' or object, but got an integer instead.
    invalid_value               Invalid value: 'bogus'. Supported values are: 'auto' and 'disabled'.
    integer_below_min_value     Invalid 'max_output_tokens': integer below minimum value. Expected a
                                value >= 16, but got -1 instead.
    decimal_above_max_value     Invalid 'temperature': decimal above maximum value. Expected a value
                                <= 2, but got 99 instead.
    empty_array                 Invalid 'messages': empty array. Expected an array with minimum
                                length 1, but got an empty array instead.
    missing_required_parameter  Missing required parameter: 'tools[0].name'.

Descriptions of what was expected are worked out from the schema once, when the validator is
compiled; the sentence is put together only when a request is refused.
"""

from __future__ import annotations

from typing import Any, Callable

from .shapes import Plain, Reader, Ref, Shape, Union

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1

_ARTICLES = ("a ", "an ")
_TYPE_PHRASES = {"string": "a string", "integer": "an integer", "number": "a decimal",
                 "boolean": "a boolean", "object": "an object", "array": "an array"}
_PLURALS = {"string": "strings", "integer": "integers", "number": "numbers",
            "boolean": "booleans", "object": "objects", "array": "arrays"}


def got(value: Any) -> str:
    """What a value is, as OpenAI names it: ``a string``, ``an integer``, ``a decimal number``..."""
    kind = value.__class__
    if value is None:
        return "null"
    if kind is bool:
        return "a boolean"
    if kind is int:
        return "an integer"
    if kind is float:
        return "a decimal number"
    if kind is str:
        return "a string"
    if kind is list:
        return "an array"
    return "an object"


def quoted(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else number(value) if _is_number(value) \
        else repr(value)


def number(value: Any) -> str:
    """A bound or a value as OpenAI prints it: ``2`` for 2.0, ``2.5``, ``1e+29``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def supported(values: tuple[Any, ...]) -> str:
    """``'a'``, ``'a' and 'b'``, ``'a', 'b', and 'c'``."""
    shown = [quoted(value) for value in values]
    if len(shown) <= 2:
        return " and ".join(shown)
    return ", ".join(shown[:-1]) + ", and " + shown[-1]


def one_of(phrases: list[str]) -> str:
    """``'a', 'b', or 'c'`` (the list OpenAI writes after "one of")."""
    if len(phrases) <= 2:
        return " or ".join(phrases)
    return ", ".join(phrases[:-1]) + ", or " + phrases[-1]


def expected(reader: Reader, shape: Shape) -> str:
    """What ``shape`` accepts, as the middle of "expected ..., but got ... instead"."""
    phrases = _phrases(reader, shape, frozenset())
    if not phrases:
        return "a value"
    if len(phrases) == 1:
        return phrases[0]
    # OpenAI keeps the article on the first alternative only: "one of a string or array of ..."
    return "one of " + one_of([phrases[0], *(_bare(p) for p in phrases[1:])])


def _phrases(reader: Reader, shape: Shape, seen: frozenset[str]) -> list[str]:
    if isinstance(shape, Ref):
        if shape.name in seen:
            return []
        return _phrases(reader, reader.definition(shape.name), seen | {shape.name})
    found: list[str] = []
    if isinstance(shape, Union):
        for member in shape.members:
            found.extend(p for p in _phrases(reader, member, seen) if p not in found)
        if "a string" in found:  # "a string" already covers the enums (a model id list, say)
            found = [p for p in found if not p.startswith(("one of '", "'"))]
        return found
    if shape.enum is not None and all(isinstance(v, str) for v in shape.enum if v is not None):
        values = [quoted(v) for v in shape.enum if v is not None]
        return [values[0] if len(values) == 1 else "one of " + one_of(values)]
    if shape.types is None:
        for part in shape.also:
            found.extend(p for p in _phrases(reader, part, seen) if p not in found)
        return found
    kinds = [kind for kind in _TYPE_PHRASES if kind in shape.types]
    if "number" in kinds and "integer" in kinds:
        kinds.remove("integer")
    for kind in kinds:
        found.append(_array_phrase(reader, shape) if kind == "array" else _TYPE_PHRASES[kind])
    return found


def _array_phrase(reader: Reader, shape: Plain) -> str:
    if shape.items is None:
        return "an array"
    kinds = reader.accepted(shape.items)
    if kinds is not None and len(kinds - {"null"}) == 1:
        (kind,) = kinds - {"null"}
        return f"an array of {_PLURALS[kind]}"
    return "an array"


def _bare(phrase: str) -> str:
    for article in _ARTICLES:
        if phrase.startswith(article):
            return phrase[len(article):]
    return phrase


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- the sentences, by code ----------------------------------------------------------------------


def _invalid_type(param: str, value: Any, detail: Any) -> str:
    return f"Invalid type for '{param}': expected {detail}, but got {got(value)} instead."


def _invalid_value(param: str, value: Any, detail: Any) -> str:
    return f"Invalid value: {quoted(value)}. Supported values are: {supported(detail)}."


def _missing(param: str, value: Any, detail: Any) -> str:
    return f"Missing required parameter: '{param}'."


def _bound(kind: str, direction: str) -> Callable[[str, Any, Any], str]:
    def sentence(param: str, value: Any, detail: Any) -> str:
        relation, bound = detail  # (">=", 16); exclusive bounds say ">" or "<"
        return (f"Invalid '{param}': {kind} {direction} value. Expected a value {relation} "
                f"{number(bound)}, but got {number(value)} instead.")
    return sentence


def _length(thing: str, word: str, bound: str) -> Callable[[str, Any, Any], str]:
    def sentence(param: str, value: Any, detail: Any) -> str:
        return (f"Invalid '{param}': {thing} too {word}. Expected {_article(thing)} {thing} with "
                f"{bound} length {detail}, but got {_article(thing)} {thing} with length {value} "
                "instead.")
    return sentence


def _empty(thing: str) -> Callable[[str, Any, Any], str]:
    def sentence(param: str, value: Any, detail: Any) -> str:
        return (f"Invalid '{param}': empty {thing}. Expected {_article(thing)} {thing} with minimum "
                f"length {detail}, but got an empty {thing} instead.")
    return sentence


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _too_many_properties(param: str, value: Any, detail: Any) -> str:
    return (f"Invalid '{param}': too many properties. Expected an object with at most {detail} "
            f"properties, but got an object with {value} properties instead.")


def _long_name(param: str, value: Any, detail: Any) -> str:
    owner = param.rsplit(".", 1)[0]
    return (f"Invalid property name in '{owner}': '{value}' is too long. Expected a string with "
            f"maximum length {detail}, but got a string with length {len(value)} instead.")


MESSAGES: dict[str, Callable[[str, Any, Any], str]] = {
    "invalid_type": _invalid_type,
    "invalid_value": _invalid_value,
    "missing_required_parameter": _missing,
    "integer_below_min_value": _bound("integer", "below minimum"),
    "integer_above_max_value": _bound("integer", "above maximum"),
    "decimal_below_min_value": _bound("decimal", "below minimum"),
    "decimal_above_max_value": _bound("decimal", "above maximum"),
    "empty_array": _empty("array"),
    "array_below_min_length": _length("array", "short", "minimum"),
    "array_above_max_length": _length("array", "long", "maximum"),
    "empty_string": _empty("string"),
    "string_below_min_length": _length("string", "short", "minimum"),
    "string_above_max_length": _length("string", "long", "maximum"),
    "object_above_max_properties": _too_many_properties,
    "property_name_above_max_length": _long_name,
}
