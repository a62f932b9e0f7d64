"""What ``mapper serve`` runs on: the options it was given, and the routes and keys they resolve to.

``ServeOptions`` is what the command line says, as plain values: it can be written to an
environment variable and read back by each ``--workers`` process. ``build_config`` turns it into a
``ProxyConfig`` (compiled mappings, normalised URLs, keys read from the environment), once, at
start-up, so that a wrong flag, routes file, mapping or missing variable stops the server before
it listens, with every problem reported at once and located (file and line for a routes file).

Routes come from the flags (``--mapping``, ``--upstream``: one default route) or from a routes
file (``--config``, YAML or JSON, checked against ``schemas/routes-1.schema.json``). Keys are never
written in a file or a flag: both name the environment variables that hold them. Timeouts layer:
built-in defaults, then the ``--*-timeout`` flags, then the file's ``timeouts``, then the route's.
The response store (``engine.store``) comes from ``--store`` (or ``$MAPPER_STORE``), else the
file's ``store``; one store serves every route of the process.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping as EnvMapping
from urllib.parse import unquote, urlsplit, urlunsplit

import jsonschema
import orjson

from .. import load_mapping
from ..errors import ConfigError, MapperError, SpecError, SpecErrors
from ..load import PACKAGE_ROOT, read_yaml
from ..mapping import Mapping
from ..store import StoreConfig
from .routes import Route, Router
from ..upstream_target import API_PATHS, auth_headers, endpoint_url
from .front import DEFAULT_LIMITS
from .upstream import TRANSPORTS, Timeouts, base_url

__all__ = ["ConfigError", "ProxyConfig", "RoutesFile", "ServeOptions", "build_config"]

ROUTES_SCHEMA = PACKAGE_ROOT / "schemas" / "routes-1.schema.json"
DEFAULT_MAX_BODY_BYTES = 16 << 20
OPTIONS_ENV = "MAPPER_SERVE_OPTIONS"  # how ``--workers`` processes receive the options
# What the proxy changes in every route's mapping options, below the route's own: a client newer
# than the mapping keeps working, its unknown fields left out and reported rather than refused.
# ``--strict`` refuses instead, as ``mapper convert`` does.
LENIENT_OPTIONS = {"unknown_fields": "drop"}
STRICT_OPTIONS = {"unknown_fields": "reject", "builtin_tools": "reject"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHOWN_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")  # names safe to echo (not a pasted key)


@dataclass(frozen=True)
class ServeOptions:
    """The options of ``mapper serve``, as plain values (JSON round-trips them to workers)."""

    mapping: str | None = None
    overlays: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    upstream: str | None = None
    api_key_env: str | None = None
    proxy_key_env: str | None = None
    config: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    log_bodies: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    connect_timeout: float | None = None
    read_timeout: float | None = None
    idle_timeout: float | None = None
    total_timeout: float | None = None
    header_timeout: float = DEFAULT_LIMITS.header_timeout
    keepalive_timeout: float = DEFAULT_LIMITS.keepalive_timeout
    max_header_bytes: int = DEFAULT_LIMITS.max_header_bytes
    max_connections: int | None = None  # None: from the descriptor limit (server.connection_cap)
    transport: str = "aiohttp"
    store: str | None = None  # a store URL; "sqlite://" is the default file
    store_ttl: float | None = None
    strict: bool = False  # refuse unknown fields and tools the upstream cannot run

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> "ServeOptions":
        values = orjson.loads(text)
        values["overlays"] = tuple(values.get("overlays") or ())
        return cls(**values)


@dataclass(frozen=True)
class ProxyConfig:
    """Everything the proxy app needs, resolved. Immutable; shared by all requests."""

    router: Router
    proxy_keys: tuple[str, ...] = field(default=(), repr=False)  # non-empty: held-key mode
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    log_bodies: bool = False
    transport: str = "aiohttp"
    store: StoreConfig | None = None  # None: no response store, store=true is refused

    @property
    def held_keys(self) -> bool:
        """True when clients must present one of ``proxy_keys``."""
        return bool(self.proxy_keys)

    def secrets(self) -> tuple[str, ...]:
        """Every key this process knows, for redaction."""
        keys = [*self.proxy_keys, *(route.api_key for route in self.router.routes if route.api_key)]
        for route in self.router.routes:
            if route.basic_auth:  # the header's token, and the password inside it
                token = route.basic_auth.partition(" ")[2]
                keys += [token, base64.b64decode(token).decode().partition(":")[2]]
        if self.store is not None and self.store.secret:
            keys.append(self.store.secret)
        return tuple(dict.fromkeys(keys))


def build_config(options: ServeOptions, env: EnvMapping[str, str] | None = None) -> ProxyConfig:
    """Resolve ``options`` into a ``ProxyConfig``; raises ``ConfigError``/``SpecErrors``."""
    env = os.environ if env is None else env
    if options.transport not in TRANSPORTS:
        raise ConfigError(f"unknown upstream transport {options.transport!r}; "
                          f"known: {', '.join(sorted(TRANSPORTS))}")
    if options.max_body_bytes <= 0:
        raise ConfigError("--max-body-bytes must be positive")
    for name in ("header_timeout", "keepalive_timeout", "max_header_bytes"):
        if getattr(options, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive")
    if options.max_connections is not None and options.max_connections <= 0:
        raise ConfigError("--max-connections must be positive")
    timeouts = Timeouts().replace(connect=options.connect_timeout, read=options.read_timeout,
                                  idle=options.idle_timeout, total=options.total_timeout)
    if options.config:
        if options.mapping or options.upstream or options.api_key_env:
            raise ConfigError("--config cannot be combined with --mapping, --upstream or "
                              "--api-key-env: the routes file says those per route")
        routes_file = read_routes_file(Path(options.config), timeouts, env,
                                       store_ttl=None if options.store else options.store_ttl,
                                       strict=options.strict)
        routes, keys_env = routes_file.routes, options.proxy_key_env or routes_file.proxy_keys_env
        store = routes_file.store
    else:
        routes = [_flag_route(options, timeouts, env)]
        keys_env, store = options.proxy_key_env, None
    if options.store:
        store = _flag_store(options.store, options.store_ttl, env)
    elif options.store_ttl is not None and store is None:
        raise ConfigError("--store-ttl needs a response store (--store, or `store` in the routes "
                          "file)")
    proxy_keys = _proxy_keys(keys_env, env) if keys_env else ()
    return ProxyConfig(router=Router.of(routes), proxy_keys=proxy_keys,
                       max_body_bytes=options.max_body_bytes, log_bodies=options.log_bodies,
                       transport=options.transport, store=store)


# -- the flags --------------------------------------------------------------------------------


def _flag_route(options: ServeOptions, timeouts: Timeouts, env: EnvMapping[str, str]) -> Route:
    if not options.mapping or not options.upstream:
        raise ConfigError("give --mapping and --upstream, or --config with a routes file")
    try:
        upstream, basic_auth = upstream_credentials(base_url(options.upstream))
    except ValueError as error:
        raise ConfigError(f"--upstream: {error}") from None
    mapping = _mapping(options.mapping, tuple(options.overlays),
                       serving_options(options.options, options.strict))
    _check_mapping(mapping, "--mapping")
    api_key = _env_key(options.api_key_env, env, "--api-key-env") if options.api_key_env else None
    if api_key and basic_auth:
        raise ConfigError(_TWO_CREDENTIALS.format(url="--upstream", key="--api-key-env"))
    return Route(name="default", pattern=None, upstream=upstream, mapping=mapping, api_key=api_key,
                 api_key_env=options.api_key_env, basic_auth=basic_auth, timeouts=timeouts)


_TWO_CREDENTIALS = ("{url}: the URL carries credentials (user:password@) and {key} names a key; "
                    "the upstream takes one Authorization header: give one of them")


def upstream_credentials(url: str) -> tuple[str, str | None]:
    """``url`` without its ``user:password@``, and the ``Authorization: Basic`` value they make.

    aiohttp refuses a URL with credentials together with an ``Authorization`` header (a client's
    key in pass-through mode), so the credentials leave the URL and become the route's own
    header, sent like a held key.
    """
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    netloc = parts.netloc.rpartition("@")[2]
    return (urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)),
            "Basic " + base64.b64encode(pair.encode()).decode())


def _flag_store(url: str, ttl: float | None, env: EnvMapping[str, str]) -> StoreConfig:
    try:
        return StoreConfig.parse(url, ttl=ttl, env=dict(env))
    except ValueError as error:
        raise ConfigError(f"--store: {error}") from None


def _proxy_keys(name: str, env: EnvMapping[str, str]) -> tuple[str, ...]:
    raw = _env_key(name, env, "proxy keys (--proxy-key-env / proxy_keys_env)")
    keys = tuple(dict.fromkeys(key.strip() for key in raw.split(",") if key.strip()))
    if not keys:
        raise ConfigError("the proxy keys variable holds no key (expected KEY1,KEY2,...)")
    return keys


def _env_key(name: str, env: EnvMapping[str, str], what: str, **where: Any) -> str:
    """The value of the environment variable ``name``; the error never echoes a pasted key."""
    if not _ENV_NAME.match(name):
        raise ConfigError(f"{what} takes the NAME of an environment variable (letters, digits, _), "
                          "not a key", **where)
    value = env.get(name, "").strip()
    if not value:
        shown = f"${name}" if _SHOWN_ENV_NAME.match(name) else "the variable it names"
        raise ConfigError(f"{what}: {shown} is not set or empty", **where)
    return value


def _check_mapping(mapping: Mapping, place: str, **location: Any) -> None:
    """The mapping's APIs have paths, and its upstream options (path, query, header) are sound."""
    for api in (mapping.from_api, mapping.to_api):
        if api not in API_PATHS:
            raise ConfigError(f"{place}: mapping '{mapping.id}' uses API {api!r}, which the proxy "
                              f"cannot serve (known: {', '.join(sorted(API_PATHS))})", **location)
    try:
        endpoint_url("http://upstream/v1", mapping.options, api=mapping.to_api, model="model")
        auth_headers(mapping.options, "key")
    except ValueError as error:
        raise ConfigError(f"{place}: {error}", **location) from None


def serving_options(options: dict[str, Any], strict: bool) -> dict[str, Any]:
    """A route's mapping options: the proxy's policy (lenient or ``--strict``), then its own."""
    return {**(STRICT_OPTIONS if strict else LENIENT_OPTIONS), **options}


@lru_cache(maxsize=64)
def _compiled(reference: str, overlays: tuple[str, ...], options_json: str) -> Mapping:
    options = orjson.loads(options_json) or None
    return load_mapping(reference, overlays=overlays, options=options)


def _mapping(reference: str, overlays: tuple[str, ...], options: dict[str, Any]) -> Mapping:
    """Compile a mapping once per distinct (mapping, overlays, options); routes share it."""
    return _compiled(reference, overlays, orjson.dumps(options or {}, option=orjson.OPT_SORT_KEYS)
                     .decode())


# -- the routes file ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(orjson.loads(ROUTES_SCHEMA.read_bytes()))


@dataclass(frozen=True)
class RoutesFile:
    """What a routes file resolves to."""

    routes: list[Route]
    proxy_keys_env: str | None = None
    store: StoreConfig | None = None


def read_routes_file(path: Path, timeouts: Timeouts, env: EnvMapping[str, str], *,
                     store_ttl: float | None = None, strict: bool = False) -> RoutesFile:
    """Routes, proxy-keys variable and store of a routes file; every problem, located."""
    display = str(path)
    if not path.is_file():
        raise ConfigError("no such routes file", file=display)
    document = read_yaml(path, display)
    problems = [_schema_problem(error, document, display)
                for error in _validator().iter_errors(document)]
    if problems:
        raise _all(problems)
    file_timeouts = timeouts.replace(**document.get("timeouts", {}))
    routes: list[Route] = []
    reported: set[str] = set()  # default routes already reported as shadowing others
    for name, node in document["routes"].items():
        try:
            route = _file_route(name, node, path, file_timeouts, env, strict)
        except ConfigError as error:
            problems.append(error)
            continue
        shadowing = next((r for r in routes if r.pattern is None and r.path == route.path), None)
        if shadowing is not None and shadowing.name not in reported:
            reported.add(shadowing.name)
            # first match wins: nothing after a default route for the same path is ever used
            problems.append(_at(document["routes"], shadowing.name,
                                f"routes.{shadowing.name}: a route without `match` is the default "
                                f"route for {route.path} and must be the last of its path "
                                f"(routes.{name} follows it)"))
        routes.append(route)
    store = None
    try:
        store = _file_store(document, path, store_ttl, env)
    except ConfigError as error:
        problems.append(error)
    if problems:
        raise _all(problems)
    return RoutesFile(routes, document.get("proxy_keys_env"), store)


def _file_store(document: Any, path: Path, ttl: float | None,
                env: EnvMapping[str, str]) -> StoreConfig | None:
    """The file's ``store``: true (the default SQLite file), false, or a URL."""
    value = document.get("store", False)
    if value is False:
        return None
    url = None if value is True else value
    if url is not None and urlsplit(url).password:
        raise _at(document, "store", "store: the URL holds a password, and secrets are never "
                  "written in the routes file: give the URL in $MAPPER_STORE or --store instead")
    try:
        return StoreConfig.parse(url, ttl=ttl, base_dir=path.parent.resolve(), env=dict(env))
    except ValueError as error:
        raise _at(document, "store", f"store: {error}") from None


def _file_route(name: str, node: Any, path: Path, timeouts: Timeouts,
                env: EnvMapping[str, str], strict: bool) -> Route:
    where = f"routes.{name}"
    pattern = None
    if "match" in node:
        try:
            pattern = re.compile(node["match"])
        except re.error as error:
            raise _at(node, "match", f"{where}.match: not a regular expression: {error}") from None
    try:
        upstream, basic_auth = upstream_credentials(base_url(node["upstream"]))
    except ValueError as error:
        raise _at(node, "upstream", f"{where}.upstream: {error}") from None
    mapping = _route_mapping(node, path, where, strict)
    api_key = None
    if "api_key_env" in node:
        file, line = _line(node, "api_key_env")
        api_key = _env_key(node["api_key_env"], env, f"{where}.api_key_env", file=file, line=line,
                           rule=where)
    if api_key and basic_auth:
        raise _at(node, "upstream", _TWO_CREDENTIALS.format(url=f"{where}.upstream",
                                                            key=f"{where}.api_key_env"))
    return Route(name=name, pattern=pattern, upstream=upstream, mapping=mapping,
                 model=node.get("model"), api_key=api_key, api_key_env=node.get("api_key_env"),
                 basic_auth=basic_auth,
                 timeouts=timeouts.replace(**node.get("timeouts", {})),
                 models=tuple(node.get("models", ())))


def _route_mapping(node: Any, path: Path, where: str, strict: bool) -> Mapping:
    def near(reference: str) -> str:
        candidate = path.parent / reference  # files are relative to the routes file
        return str(candidate) if candidate.is_file() else reference

    try:
        mapping = _mapping(near(node["mapping"]), tuple(near(o) for o in node.get("overlays", ())),
                           serving_options(dict(node.get("options", {})), strict))
    except MapperError as error:
        detail = str(error).replace("\n", "\n    ")
        raise _at(node, "mapping", f"{where}.mapping: cannot load {node['mapping']!r}:\n    {detail}") \
            from None
    file, line = _line(node, "mapping")
    _check_mapping(mapping, f"{where}.mapping", file=file, line=line, rule=where)
    return mapping


def _schema_problem(error: jsonschema.ValidationError, document: Any, display: str) -> ConfigError:
    path = list(error.absolute_path)
    message = error.message
    node = error.instance
    file, line = _walk(document, path, display)
    if error.validator == "additionalProperties" and isinstance(node, dict):
        allowed = error.schema.get("properties", {})
        extras = [key for key in node if key not in allowed]
        if extras:
            file, line = _line(node, extras[0]) if hasattr(node, "key_lines") else (file, line)
            path = path + [extras[0]]
            message = f"unknown key {', '.join(repr(key) for key in extras)}"
            if any("key" in str(key).lower() for key in extras):
                message += " (keys are never written in the file: name an environment variable " \
                           "with api_key_env or proxy_keys_env)"
    if path and path[-1] in ("api_key_env", "proxy_keys_env"):
        # jsonschema quotes the value, and a wrong value here is often the key itself
        message = "takes the NAME of an environment variable (letters, digits, _), not a key"
    where = ".".join(str(part) for part in path) or "<root>"
    return ConfigError(f"{where}: {message}", file=file or display, line=line)


def _walk(document: Any, path: list[Any], display: str) -> tuple[str, int | None]:
    """The file and line of the deepest node of ``path`` the loader located."""
    node, file, line = document, getattr(document, "file", display), getattr(document, "line", None)
    for key in path:
        key_lines = getattr(node, "key_lines", None)
        keyed = bool(key_lines) and key in key_lines
        if keyed:
            file, line = key_lines[key]  # the key's line reads better than its value's
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            break
        if not keyed:
            file, line = getattr(node, "file", file), getattr(node, "line", line)
    return file, line


def _line(node: Any, key: str | None) -> tuple[str | None, int | None]:
    key_lines = getattr(node, "key_lines", {})
    if key is not None and key in key_lines:
        return key_lines[key]
    return getattr(node, "file", None), getattr(node, "line", None)


def _at(node: Any, key: str | None, message: str) -> ConfigError:
    file, line = _line(node, key)
    return ConfigError(message, file=file, line=line)


def _all(problems: list[SpecError]) -> SpecError:
    problems.sort(key=lambda problem: (problem.file or "", problem.line or 0))
    return problems[0] if len(problems) == 1 else SpecErrors(problems)
