"""Derive the JSON Schemas in this folder from the type definitions of the ``anthropic`` Python SDK.

Run it with the SDK installed (``pip install anthropic==2.15.0``):

    python schemas/anthropic/derive.py           # rewrite the *.json files next to this script
    python schemas/anthropic/derive.py --check   # exit 1 if a file would change

Nothing in mapper imports this script: the JSON files it writes are committed data, read at run and
test time without the SDK. See SOURCE.md for what it reads and what it simplifies.

Why a walker over the Python types and not pydantic's ``model_json_schema()``: the SDK marks its
discriminated unions with its own ``UnionDiscriminator`` metadata (responses) or not at all (request
TypedDicts), which pydantic renders as plain ``anyOf``. Mapper's coverage lint and its validators need
real unions whose variants are told apart by a ``const`` discriminator, so this walker emits ``oneOf``
plus an ``x-discriminator`` map (``{"propertyName", "mapping": {value: $ref}}``) wherever every variant
of a union is an object with a constant ``type`` (or ``role``), and ``anyOf`` elsewhere.

Rules of the translation:

- A TypedDict (request side) or pydantic model (response side) becomes one ``$defs`` entry named after
  the class; a helper class defined in another type's module is named ``<Module>.<Class>``. Every object
  is closed (``additionalProperties: false``) unless the SDK lets it carry extra keys.
- A key is required when the SDK says so: ``Required[...]`` or a total TypedDict; for models, a field
  without a default. ``Optional[X]`` becomes ``X`` or null.
- ``Literal["a"]`` becomes ``const``, several literals an ``enum``; a union of string literals and
  ``str`` (model names) becomes a string with the literals under ``x-known-values``.
- File-like branches (``IO[bytes]``, ``PathLike``) are dropped: on the wire they are base64 strings.
"""

from __future__ import annotations

import argparse
import collections.abc
import datetime
import json
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Iterable

import typing_extensions as te

SDK_VERSION = "2.15.0"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
HERE = Path(__file__).resolve().parent
DISCRIMINATORS = ("type", "role")  # properties that can tell union variants apart, in order of preference

# HTTP status per error type: docs.claude.com/en/api/errors and the status classes of anthropic/_exceptions.py
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

Json = Any


class Deriver:
    """Walks SDK types and collects one ``$defs`` bundle; ``schema(tp)`` returns the inline schema of ``tp``."""

    def __init__(self, extra_variants: dict[type, list[type]] | None = None) -> None:
        self.defs: dict[str, Json] = {}
        self.names: dict[type, str] = {}
        # variant class -> classes appended to every union that contains it (documented patches)
        self.extra_variants = extra_variants or {}

    # -- types -------------------------------------------------------------------------------

    def schema(self, tp: Any, discriminator: str | None = None) -> Json | None:
        """The JSON Schema of ``tp``, or None for a type with no JSON form (file objects)."""
        origin = te.get_origin(tp)
        if origin is te.Annotated:
            inner, *metadata = te.get_args(tp)
            return self.schema(inner, _discriminator_of(metadata) or discriminator)
        if origin in (te.Required, te.NotRequired, te.ReadOnly):
            return self.schema(te.get_args(tp)[0], discriminator)
        if origin in (typing.Union, types.UnionType):
            return self.union(te.get_args(tp), discriminator)
        if origin is te.Literal:
            return _literal(te.get_args(tp))
        if origin in (list, tuple, set, frozenset) or _is_sequence(origin):
            args = te.get_args(tp)
            items = self.schema(args[0]) if args else {}
            return {"type": "array", "items": items if items is not None else {}}
        if origin in (dict, collections.abc.Mapping):
            args = te.get_args(tp)
            values = self.schema(args[1]) if len(args) == 2 else {}
            return {"type": "object", "additionalProperties": _open(values)}
        return self.plain(tp)

    def plain(self, tp: Any) -> Json | None:
        scalars = {str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"},
                   bool: {"type": "boolean"}, type(None): {"type": "null"}}
        if tp in scalars:
            return dict(scalars[tp])
        if tp in (object, typing.Any):
            return {}
        if tp is datetime.datetime:
            return {"type": "string", "format": "date-time"}
        if tp is os.PathLike or te.get_origin(tp) in (os.PathLike, typing.IO) or tp is typing.IO:
            return None
        if _is_typeddict(tp) or _is_model_class(tp):
            return {"$ref": f"#/$defs/{self.define(tp)}"}
        raise TypeError(f"no JSON Schema rule for {tp!r}")

    def union(self, args: Iterable[Any], discriminator: str | None) -> Json:
        branches = _flatten(args)
        nullable = type(None) in branches
        branches = [b for b in branches if b is not type(None)]
        for variant in list(branches):
            branches += [extra for extra in self.extra_variants.get(variant, []) if extra not in branches]
        literals = [value for b in branches if te.get_origin(b) is te.Literal for value in te.get_args(b)]
        if str in branches and literals:
            # Union[Literal[...], str]: an open string with the known values listed
            schema = {"type": "string", "x-known-values": sorted(literals)}
            return _nullable(schema) if nullable else schema
        if any(_is_typeddict(b) for b in branches):
            # the SDK lets a request carry response models (`message.content` passed back as is); on the
            # wire they are the request block of the same `type`, so only the request forms are kept
            branches = [b for b in branches if not _is_model_class(b)]
        classes = [b for b in branches if _is_typeddict(b) or _is_model_class(b)]
        # sorted: typing caches equal unions (same members, another order) as one object, so the order
        # the SDK wrote depends on which module was imported first
        others = sorted((s for s in (self.schema(b) for b in branches if b not in classes) if s is not None), key=json.dumps)
        objects = sorted((self.schema(cls) for cls in classes), key=json.dumps)
        mapping = self.discriminate(classes, discriminator) if len(classes) > 1 else None
        if mapping is not None:
            name, values, default = mapping
            union: Json = {"oneOf": objects, "x-discriminator": {"propertyName": name, "mapping": dict(sorted(values.items()))}}
            if default is not None:
                union["x-discriminator"]["whenAbsent"] = default
            variants = [union, *others]
        else:
            variants = [*objects, *others]
        schema = variants[0] if len(variants) == 1 else {"anyOf": variants}
        return _nullable(schema) if nullable else schema

    def discriminate(self, classes: list[type], hint: str | None) -> tuple[str, dict[str, str], str | None] | None:
        """(property, {value: $ref}, $ref of the variant that may omit it) when one property tells ``classes`` apart."""
        for name in ([hint] if hint else []) + [d for d in DISCRIMINATORS if d != hint]:
            mapping: dict[str, str] = {}
            default = None
            for cls in classes:
                values, required = _constant_values(cls, name)
                ref = f"#/$defs/{self.define(cls)}"
                if not values or any(value in mapping for value in values):
                    break
                if not required:
                    if default is not None:
                        break
                    default = ref
                mapping.update({value: ref for value in values})
            else:
                return name, mapping, default
        return None

    # -- definitions -------------------------------------------------------------------------

    def define(self, cls: type) -> str:
        """Add ``cls`` to ``$defs`` (once) and return its name there."""
        if cls in self.names:
            return self.names[cls]
        name = _def_name(cls)
        if name in self.defs:
            raise ValueError(f"two SDK classes want the $defs name {name!r}")
        self.names[cls] = name
        self.defs[name] = {}  # placeholder: a class may refer to itself
        self.defs[name] = self.typeddict(cls) if _is_typeddict(cls) else self.model(cls)
        return name

    def typeddict(self, cls: type) -> Json:
        hints = typing.get_type_hints(cls, include_extras=True)
        totals = _declaring_totality(cls)
        properties, required = {}, []
        for key, hint in hints.items():
            origin = te.get_origin(hint)
            if origin is te.Required or (totals.get(key, True) and origin is not te.NotRequired):
                required.append(key)
            schema = self.schema(hint)
            properties[key] = schema if schema is not None else {}
        config = getattr(cls, "__pydantic_config__", {}) or {}
        return self._object(cls, properties, required, closed=config.get("extra") != "allow")

    def model(self, cls: type) -> Json:
        properties, required = {}, []
        for name, field in cls.model_fields.items():
            key = field.alias or name
            schema = self.schema(field.annotation, _discriminator_of(field.metadata))
            properties[key] = schema if schema is not None else {}
            if field.is_required():
                required.append(key)
        return self._object(cls, properties, required, closed=True)

    @staticmethod
    def _object(cls: type, properties: dict[str, Json], required: list[str], *, closed: bool) -> Json:
        schema: Json = {"type": "object", "properties": dict(sorted(properties.items()))}
        if required:
            schema["required"] = sorted(required)
        if closed:
            schema["additionalProperties"] = False
        schema["x-sdk-type"] = f"{cls.__module__}.{cls.__qualname__}"
        return schema


# -- helpers ---------------------------------------------------------------------------------------


def _is_model_class(tp: Any) -> bool:
    import pydantic

    return isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and te.is_typeddict(tp)


def _is_sequence(origin: Any) -> bool:
    return origin in (collections.abc.Iterable, collections.abc.Sequence)


def _discriminator_of(metadata: Iterable[Any]) -> str | None:
    for item in metadata:
        if type(item).__name__ == "UnionDiscriminator":
            return item.field_name
    return None


def _flatten(args: Iterable[Any]) -> list[Any]:
    flat: list[Any] = []
    for arg in args:
        inner = te.get_args(arg)[0] if te.get_origin(arg) is te.Annotated else arg
        if te.get_origin(inner) in (typing.Union, types.UnionType):
            flat += [a for a in _flatten(te.get_args(inner)) if a not in flat]
        elif arg not in flat:
            flat.append(arg)
    return flat


def _literal(values: tuple[Any, ...]) -> Json:
    kinds = {type(value) for value in values}
    json_type = {str: "string", int: "integer", bool: "boolean"}.get(kinds.pop()) if len(kinds) == 1 else None
    schema: Json = {"type": json_type} if json_type else {}
    if len(values) == 1:
        schema["const"] = values[0]
    else:
        schema["enum"] = sorted(values, key=str)  # sorted for the reason given in Deriver.union
    return schema


def _nullable(schema: Json) -> Json:
    return {"anyOf": [schema, {"type": "null"}]}


def _open(schema: Json | None) -> Json:
    return True if not schema else schema


def _constant_values(cls: type, name: str) -> tuple[list[str], bool]:
    """The literal values property ``name`` of ``cls`` may take, and whether ``cls`` requires it."""
    if _is_typeddict(cls):
        hint = typing.get_type_hints(cls, include_extras=True).get(name)
        if hint is None:
            return [], False
        origin = te.get_origin(hint)
        required = origin is te.Required or (_declaring_totality(cls).get(name, True) and origin is not te.NotRequired)
    else:
        field = cls.model_fields.get(name)
        if field is None:
            return [], False
        hint, required = field.annotation, field.is_required()
    values: list[str] = []
    for branch in _flatten([_unwrap(hint)]):
        if te.get_origin(branch) is te.Literal:
            values += [v for v in te.get_args(branch) if isinstance(v, str)]
        elif branch is not type(None):
            return [], False
    nullable = type(None) in _flatten([_unwrap(hint)])
    return values, required and not nullable


def _unwrap(hint: Any) -> Any:
    while te.get_origin(hint) in (te.Required, te.NotRequired, te.ReadOnly, te.Annotated):
        hint = te.get_args(hint)[0]
    return hint


def _declaring_totality(cls: type) -> dict[str, bool]:
    """For each key of a TypedDict, the ``total`` flag of the class that declared it."""
    totals: dict[str, bool] = {}
    for base in reversed(_typeddict_lineage(cls)):
        for key in base.__dict__.get("__annotations__", {}):
            totals[key] = base.__total__
    return totals


def _typeddict_lineage(cls: type) -> list[type]:
    lineage = [cls]
    for base in getattr(cls, "__orig_bases__", ()):
        if isinstance(base, type) and te.is_typeddict(base):
            lineage += [b for b in _typeddict_lineage(base) if b not in lineage]
    return lineage


def _def_name(cls: type) -> str:
    module_stem = cls.__module__.rsplit(".", 1)[-1]
    if cls.__name__.replace("_", "").lower() == module_stem.replace("_", ""):
        return cls.__name__
    owner = "".join(part.capitalize() for part in module_stem.split("_"))
    return f"{owner}.{cls.__name__}"


# -- the documents -------------------------------------------------------------------------------

# Where the files depart from the SDK's types, and why. Each file lists the patches it carries under
# `x-patches`; the patched nodes carry `x-patch: <id>`.
PATCHES = {
    "P1": "temperature, top_p and top_k are gone from the 2.15.0 types but were in every earlier SDK "
          "(0.121.0: src/anthropic/types/message_create_params.py) and clients still send them; "
          "added with their 0.121.0 types",
    "P2": "the SDK has no error class for `request_too_large` (HTTP 413, sent by the API's front proxy, "
          "docs.claude.com/en/api/errors); added as an error object variant",
    "P3": "the SDK's RawMessageStreamEvent union leaves out `ping` (skipped by its SSE reader) and `error` "
          "(raised by it); both are documented stream events (docs.claude.com/en/docs/build-with-claude/"
          "streaming) and are added to the event union, `error` with the ErrorResponse shape",
}
SAMPLING_PARAMS = {"temperature": {"type": "number"}, "top_k": {"type": "integer"}, "top_p": {"type": "number"}}


def build_documents() -> dict[str, Json]:
    """Every schema file of this folder, by file name."""
    import anthropic
    from anthropic import types as t
    from anthropic.types.shared.error_response import ErrorResponse

    if anthropic.__version__ != SDK_VERSION:
        print(f"warning: anthropic {anthropic.__version__} installed, SOURCE.md documents {SDK_VERSION}", file=sys.stderr)
    params = t.message_create_params.MessageCreateParamsNonStreaming
    beta_params = t.beta.message_create_params.MessageCreateParamsNonStreaming
    return {
        "messages.request.json": _document(
            "MessageCreateParams", "Request body of POST /v1/messages.",
            lambda deriver: _create_params(deriver, params, "MessageCreateParams"), ["P1"],
        ),
        "messages.beta.request.json": _document(
            "BetaMessageCreateParams",
            "Request body of POST /v1/messages?beta=true (`client.beta.messages.create`), as Claude Code sends it.",
            lambda deriver: _create_params(deriver, beta_params, "BetaMessageCreateParams"), ["P1"],
        ),
        "messages.response.json": _document(
            "Message", "Response body of POST /v1/messages (not streamed).", t.Message,
        ),
        "messages.stream-event.json": _document(
            "MessageStreamEvent",
            "One `data:` payload of a streamed POST /v1/messages: the SDK's RawMessageStreamEvent union plus "
            "the `ping` and `error` events.",
            _stream_events, ["P2", "P3"],
        ),
        "error.json": _document(
            "ErrorResponse", "Error body of any endpoint (4xx/5xx); also the `error` stream event.",
            ErrorResponse, ["P2"], {"x-http-status": ERROR_STATUS},
        ),
        "count_tokens.request.json": _document(
            "MessageCountTokensParams", "Request body of POST /v1/messages/count_tokens.", t.MessageCountTokensParams,
        ),
        "count_tokens.response.json": _document(
            "MessageTokensCount", "Response body of POST /v1/messages/count_tokens.", t.MessageTokensCount,
        ),
        "models.list.json": _document("ModelsPage", "Response body of GET /v1/models.", _models_page),
    }


def _document(title: str, description: str, root: Any, patches: Iterable[str] = (), extra: Json = None) -> Json:
    deriver = Deriver({_overloaded_error(): [_request_too_large_error()]} if "P2" in patches else None)
    body = root(deriver) if callable(root) and not isinstance(root, type) else deriver.schema(root)
    if "RequestTooLargeErrorObject" in deriver.defs:
        deriver.defs["RequestTooLargeErrorObject"]["x-patch"] = "P2"
    return {
        "$schema": DRAFT,
        "$id": f"urn:mapper:anthropic:{title}",
        "title": title,
        "description": description,
        "x-sdk": f"anthropic {SDK_VERSION} (PyPI wheel), anthropic/types/; generated by schemas/anthropic/derive.py, do not edit",
        "x-patches": [{"id": patch, "why": PATCHES[patch]} for patch in patches],
        **body,
        **(extra or {}),
        "$defs": dict(sorted(deriver.defs.items())),
    }


def _create_params(deriver: Deriver, params: type, name: str) -> Json:
    deriver.define(params)
    root = deriver.defs.pop(deriver.names[params])
    # MessageCreateParams is a union of a non-streaming and a streaming TypedDict that differ only in
    # `stream` (absent or false, or true): one object with a boolean `stream` says the same
    root["properties"]["stream"] = {"type": "boolean"}
    # the beta params' `betas` travels as the `anthropic-beta` header, never in the body
    root["properties"].pop("betas", None)
    root["properties"].update({key: {**schema, "x-patch": "P1"} for key, schema in SAMPLING_PARAMS.items()})
    root["properties"] = dict(sorted(root["properties"].items()))
    root["x-sdk-type"] = f"{params.__module__}.{name} (streaming and non-streaming merged)"
    deriver.defs[name] = root
    return {"$ref": f"#/$defs/{name}"}


def _stream_events(deriver: Deriver) -> Json:
    from anthropic.types import RawMessageStreamEvent
    from anthropic.types.shared.error_response import ErrorResponse

    union = deriver.schema(RawMessageStreamEvent)
    deriver.defs["PingEvent"] = {
        "type": "object",
        "properties": {"type": {"type": "string", "const": "ping"}},
        "required": ["type"],
        "additionalProperties": False,
        "x-patch": "P3",
    }
    error_ref = deriver.schema(ErrorResponse)["$ref"]
    union["oneOf"] += [{"$ref": "#/$defs/PingEvent"}, {"$ref": error_ref}]
    union["x-discriminator"]["mapping"].update({"ping": "#/$defs/PingEvent", "error": error_ref})
    return union


def _models_page(deriver: Deriver) -> Json:
    from anthropic import pagination
    from anthropic.types import ModelInfo

    schema = deriver.model(pagination.SyncPage[ModelInfo])
    schema["x-sdk-type"] = "anthropic.pagination.SyncPage[anthropic.types.model_info.ModelInfo]"
    deriver.defs["ModelsPage"] = schema
    return {"$ref": "#/$defs/ModelsPage"}


def _overloaded_error() -> type:
    from anthropic.types.shared.overloaded_error_object import OverloadedErrorObject

    return OverloadedErrorObject


def _request_too_large_error() -> type:
    import pydantic

    # built with create_model so that no annotation is left as a string to resolve
    model = pydantic.create_model(
        "RequestTooLargeErrorObject", message=(str, ...), type=(te.Literal["request_too_large"], ...)
    )
    model.__module__ = "derive.request_too_large_error_object"
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report files that would change, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for file, schema in build_documents().items():
        text = json.dumps(schema, indent=1, ensure_ascii=False) + "\n"
        path = HERE / file
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(file)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    verb = "would change" if args.check else "written"
    print(f"{len(stale)} file(s) {verb}: {', '.join(stale) or '-'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
