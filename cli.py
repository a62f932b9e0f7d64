"""The ``mapper`` command line: a thin shell around the engine.

Commands are verbs. Everything the proxy can convert, ``mapper convert`` can convert too, from a file
or stdin to stdout, so it composes with ``jq`` in scripts. A ``MapperError`` becomes one line on
stderr and exit status 1; a usage error exits 2 (click's convention).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, TextIO

import click
import orjson
import yaml

from .engine import Mapping, MapperError, deterministic_context
from .engine.compile import compile_mapping
from .engine.context import Context
from .engine.errors import error_body
from .engine.functions import describe
from .engine.load import Loaded, builtin_names, load
from .engine.merge import changes as spec_changes
from .engine.nodes import write_yaml
from .engine.lint import lint as lint_mapping
from .engine.ops import plain

KINDS = ("request", "response", "error", "stream")


@dataclass(frozen=True)
class ChosenMapping:
    """A mapping named on the command line, loaded and compiled as it is (no overlays or options)."""

    reference: str
    loaded: Loaded
    mapping: Mapping

    def compiled(self, overlays: tuple[str, ...], options: dict[str, Any]) -> tuple[Loaded, Mapping]:
        """The mapping with ``overlays`` and ``options`` applied (itself when there are none)."""
        if not overlays and not options:
            return self.loaded, self.mapping
        try:
            loaded = load(self.reference, overlays=overlays, options=options or None)
            return loaded, compile_mapping(loaded)
        except MapperError as error:
            raise click.ClickException(str(error)) from None


class MappingParam(click.ParamType):
    """A mapping given by built-in name or file path, loaded and compiled while parsing options."""

    name = "MAPPING"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> ChosenMapping:
        if isinstance(value, ChosenMapping):
            return value
        if not isinstance(value, str) or not value:
            self.fail("give a built-in mapping name or a path to a mapping file", param, ctx)
        try:
            loaded = load(value)
            return ChosenMapping(value, loaded, compile_mapping(loaded))
        except MapperError as error:
            self.fail(str(error), param, ctx)


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--option incomplete_as_completed=true``: values are read as YAML scalars."""
    options: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--option")
        options[name.strip()] = yaml.safe_load(value)
    return options


mapping_option = click.option("--mapping", "-m", "mapping_ref", required=True, type=MappingParam(),
                              help="Built-in mapping name (openai-chat) or path to a mapping file.")
overlay_option = click.option("--overlay", "overlays", multiple=True, metavar="NAME|FILE",
                              help="Overlay applied on top of the mapping; repeat to compose.")
option_option = click.option("--option", "option_pairs", multiple=True, metavar="NAME=VALUE",
                             help="Set a mapping option, e.g. incomplete_as_completed=true.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mapper")
def main() -> None:
    """mapper: a declarative bridge between the OpenAI Responses and Chat Completions APIs."""


# -- convert ----------------------------------------------------------------------------------


@main.command()
@mapping_option
@overlay_option
@option_option
@click.option("--kind", "-k", type=click.Choice(KINDS), required=True, help="What INPUT holds.")
@click.option("--request", "request_file", type=click.File("rb"),
              help="The client's original request (JSON), echoed into responses and streams.")
@click.option("--status", type=int, default=400, show_default=True,
              help="HTTP status of the upstream error (--kind error).")
@click.option("--jsonl", is_flag=True, help="One JSON document per input and output line.")
@click.option("--keep-going", is_flag=True,
              help="With --jsonl: a bad line gives an OpenAI error object on its output line (and "
                   "its message on stderr) instead of stopping; the exit status is 1 if any failed.")
@click.option("--compact", is_flag=True, help="Write compact JSON instead of indented.")
@click.option("--deterministic", is_flag=True,
              help="Sequential ids and a fixed clock, for reproducible output.")
@click.argument("input_file", metavar="[INPUT|-]", type=click.File("rb"), default="-")
def convert(mapping_ref: ChosenMapping, overlays: tuple[str, ...], option_pairs: tuple[str, ...], kind: str,
            request_file: Any, status: int, jsonl: bool, keep_going: bool, compact: bool,
            deterministic: bool, input_file: Any) -> None:
    """Convert a request, response, error or stream read from INPUT (default stdin) to stdout."""
    _, mapping = mapping_ref.compiled(overlays, _parse_options(option_pairs))
    request = _read_json(request_file.read(), _name(request_file)) if request_file else None
    make_context = deterministic_context if deterministic else Context
    out = sys.stdout
    if kind == "stream":
        _convert_stream(mapping, input_file, request, make_context(), out)
        return
    if keep_going and not jsonl:
        raise click.UsageError("--keep-going goes with --jsonl")
    if jsonl:
        failed = 0
        for number, line in enumerate(input_file, start=1):
            if not line.strip():
                continue
            where = f"{_name(input_file)}:{number}"  # one form for bad JSON and bad documents
            try:
                document = _read_json(line, where)
                converted = _convert_one(mapping, kind, document, request, status, make_context(),
                                         where=f"{where}: ")
            except LineError as error:
                if not keep_going:
                    raise
                failed += 1
                click.echo(f"Error: {error.message}", err=True)
                converted = error.body
            out.write(orjson.dumps(converted).decode() + "\n")
        if failed:
            raise click.ClickException(f"{failed} line(s) could not be converted")
        return
    document = _read_json(input_file.read(), _name(input_file))
    converted = _convert_one(mapping, kind, document, request, status, make_context())
    option = 0 if compact else orjson.OPT_INDENT_2
    out.write(orjson.dumps(converted, option=option).decode() + "\n")


class LineError(click.ClickException):
    """One input document that cannot be converted (or parsed), and the OpenAI error body for it."""

    def __init__(self, message: str, body: dict[str, Any]) -> None:
        super().__init__(message)
        self.body = body


def _convert_one(mapping: Mapping, kind: str, document: Any, request: Any, status: int,
                 ctx: Context, where: str = "") -> Any:
    try:
        if kind == "request":
            converted = mapping.convert_request(document, ctx=ctx)
        elif kind == "response":
            converted = mapping.convert_response(document, request=request, ctx=ctx)
        else:
            converted = mapping.convert_error(document, status=status, ctx=ctx)
    except MapperError as error:
        raise LineError(f"{where}{error}", error_body(error.message, "invalid_request_error",
                                                      getattr(error, "param", None),
                                                      getattr(error, "client_code", error.code))) from None
    _note_left_out(ctx, where)
    return converted


def _note_left_out(ctx: Context, where: str = "") -> None:
    """What the conversion left out on purpose, on stderr (the proxy's x-mapper-dropped)."""
    if ctx.left_out:
        names = ", ".join(what for what, _ in ctx.left_out)
        click.echo(f"{where}note: left out {names}", err=True)


def _convert_stream(mapping: Mapping, input_file: Any, request: Any, ctx: Context,
                    out: TextIO) -> None:
    from .engine.streaming import translate_stream  # only the stream command needs it
    binary = out.buffer if hasattr(out, "buffer") else None
    try:
        for piece in translate_stream(mapping, _chunks(input_file), request=request, ctx=ctx):
            if binary is not None:
                binary.write(piece)
                binary.flush()
            else:
                out.write(piece.decode())
    except MapperError as error:
        raise click.ClickException(str(error)) from None
    _note_left_out(ctx)


def _chunks(stream: Any, size: int = 65536) -> Iterator[bytes]:
    while True:
        block = stream.read1(size) if hasattr(stream, "read1") else stream.read(size)
        if not block:
            return
        yield block


def _name(stream: Any) -> str:
    return getattr(stream, "name", None) or "<stdin>"


def _read_json(raw: bytes | str, name: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise LineError(f"{name}: invalid JSON: {error}",
                        error_body(f"invalid JSON: {error}", code="invalid_json")) from None


# -- lint, resolve, functions -----------------------------------------------------------------


@main.command()
@click.argument("files", nargs=-1, metavar="[FILES]")
def lint(files: tuple[str, ...]) -> None:
    """Compile mappings and check they account for every field (default: all built-ins)."""
    references = list(files) or builtin_names()
    failed = False
    for reference in _expand(references):
        report = lint_mapping(reference)
        if report.ok and report.mapping is not None:
            coverage = ", ".join(f"{section} {done}/{total}"
                                 for section, (done, total) in report.covered.items())
            click.echo(f"ok   {reference} ({report.mapping.id} {report.mapping.version}; "
                       f"fields covered: {coverage})")
        else:
            failed = True
            click.echo(f"FAIL {reference}")
            for problem in report.problems:
                click.echo(f"  {problem}")
    if failed:
        sys.exit(1)


def _expand(references: list[str]) -> list[str]:
    """A directory lints every *.yaml under it."""
    expanded: list[str] = []
    for reference in references:
        path = Path(reference)
        if path.is_dir():
            expanded.extend(str(p) for p in sorted(path.rglob("*.yaml")))
        else:
            expanded.append(reference)
    return expanded


@main.command()
@click.argument("mapping_ref", metavar="FILE|NAME", type=MappingParam())
@overlay_option
@option_option
@click.option("--code", is_flag=True, help="Print the Python the mapping compiles to instead.")
@click.option("--changes", is_flag=True,
              help="Print only what the overlays and options change in the base mapping, as an overlay.")
def resolve(mapping_ref: ChosenMapping, overlays: tuple[str, ...], option_pairs: tuple[str, ...],
            code: bool, changes: bool) -> None:
    """Print the merged mapping: the base with every overlay and option applied."""
    # resolve only what would also compile
    loaded, mapping = mapping_ref.compiled(overlays, _parse_options(option_pairs))
    if code:
        click.echo(f"# generated from: {' + '.join(loaded.sources)}\n{mapping.generated_source}", nl=False)
        return
    if changes:
        base, overlaid = loaded.sources[0], " + ".join(loaded.sources[1:]) or "nothing"
        click.echo(f"# what {overlaid} changes in {base}")
        changed = spec_changes(plain(loaded.base), plain(loaded.spec))
        click.echo(write_yaml(changed) if changed else "{}\n", nl=False)
        return
    click.echo(f"# resolved from: {' + '.join(loaded.sources)}")
    click.echo(write_yaml(plain(loaded.spec)), nl=False)


@main.command()
def functions() -> None:
    """List the registered functions that mappings may call with fn:."""
    entries = describe()
    width = max(len(entry["name"]) for entry in entries)
    topic = None
    for entry in entries:
        if entry["topic"] != topic:
            topic = entry["topic"]
            click.echo(f"{topic}:")
        args = f" ({', '.join(entry['args'])})" if entry["args"] else ""
        click.echo(f"  {entry['name']:<{width}}  {entry['summary']}{args}")


# -- serve ------------------------------------------------------------------------------------


@main.command()
@click.option("--mapping", "-m", "mapping_ref", type=MappingParam(),
              help="Built-in mapping name (openai-chat) or path to a mapping file.")
@overlay_option
@option_option
@click.option("--upstream", metavar="URL",
              help="The upstream's base URL, e.g. http://127.0.0.1:11434/v1.")
@click.option("--api-key-env", metavar="VAR",
              help="Environment variable holding the upstream's key (held by the proxy).")
@click.option("--proxy-key-env", metavar="VAR",
              help="Environment variable holding the comma-separated keys clients must present.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="A routes file (YAML or JSON) instead of --mapping and --upstream.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1),
              help="Worker processes.")
@click.option("--log-bodies", is_flag=True,
              help="Log request and response bodies (keys redacted); for debugging.")
@click.option("--max-body-bytes", default=16 << 20, show_default=True, type=click.IntRange(1),
              help="Largest request body accepted; larger ones get 413.")
@click.option("--connect-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Connecting to the upstream.  [default: 10]")
@click.option("--read-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="From the request to the first byte of the upstream's answer.  [default: 600]")
@click.option("--idle-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Longest silence between two pieces of the upstream's body.  [default: 300]")
@click.option("--total-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="The whole exchange with the upstream, streamed or not.  [default: 1800]")
@click.option("--header-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0,
              show_default=True, metavar="SECONDS",
              help="A client's request head must arrive within this after its first byte, and "
                   "its body may fall silent no longer (408).")
@click.option("--keepalive-timeout", type=click.FloatRange(min=0, min_open=True), default=75.0,
              show_default=True, metavar="SECONDS",
              help="Close a client connection idle this long (no request in progress), or "
                   "reading nothing of its answer this long.")
@click.option("--max-header-bytes", type=click.IntRange(1), default=64 << 10, show_default=True,
              help="Largest request head (request line and headers); larger gets 431.")
@click.option("--max-connections", type=click.IntRange(1), metavar="N",
              help="Open client connections per process; more get 503.  "
                   "[default: half the descriptor limit]")
@click.option("--upstream-transport", type=click.Choice(["aiohttp", "httpx"]), default="aiohttp",
              show_default=True, help="The HTTP transport under the upstream client.")
@click.option("--store", "store_url", is_flag=False, flag_value="sqlite://", default=None,
              metavar="[URL]", envvar="MAPPER_STORE",
              help="Keep responses for store, previous_response_id and GET/DELETE "
                   "/v1/responses/{id}: sqlite:///FILE, sqlite:////ABSOLUTE/FILE or "
                   "redis://HOST:PORT/DB; alone, a SQLite file under $XDG_DATA_HOME/mapper. "
                   "Also read from $MAPPER_STORE.")
@click.option("--store-ttl", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Delete stored responses after this long.  [default: keep until deleted]")
@click.option("--strict", is_flag=True,
              help="Refuse request fields the mapping does not know and tools the upstream cannot "
                   "run (a 400 naming them), as mapper convert does, instead of leaving them out.")
def serve(mapping_ref: ChosenMapping | None, overlays: tuple[str, ...], option_pairs: tuple[str, ...],
          upstream: str | None, api_key_env: str | None, proxy_key_env: str | None,
          config_file: str | None, host: str, port: int, workers: int, log_bodies: bool,
          max_body_bytes: int, connect_timeout: float | None, read_timeout: float | None,
          idle_timeout: float | None, total_timeout: float | None, header_timeout: float,
          keepalive_timeout: float, max_header_bytes: int, max_connections: int | None,
          upstream_transport: str, store_url: str | None, store_ttl: float | None,
          strict: bool) -> None:
    """Serve the mapping's client API over HTTP, in front of an upstream (or several, --config)."""
    from .engine.proxy.config import ServeOptions  # the proxy's imports are only paid by serve
    from .engine.proxy.server import serve as run_server

    if config_file and (mapping_ref or upstream or api_key_env or overlays or option_pairs):
        raise click.UsageError("--config cannot be combined with --mapping, --upstream, "
                               "--api-key-env, --overlay or --option: the routes file holds them")
    if not config_file and not (mapping_ref and upstream):
        raise click.UsageError("give --mapping and --upstream, or --config with a routes file")
    options = ServeOptions(
        mapping=mapping_ref.reference if mapping_ref else None, overlays=overlays,
        options=_parse_options(option_pairs),
        upstream=upstream, api_key_env=api_key_env, proxy_key_env=proxy_key_env,
        config=config_file, host=host, port=port, workers=workers, log_bodies=log_bodies,
        max_body_bytes=max_body_bytes, connect_timeout=connect_timeout, read_timeout=read_timeout,
        idle_timeout=idle_timeout, total_timeout=total_timeout, header_timeout=header_timeout,
        keepalive_timeout=keepalive_timeout, max_header_bytes=max_header_bytes,
        max_connections=max_connections, transport=upstream_transport, store=store_url,
        store_ttl=store_ttl, strict=strict)
    try:
        run_server(options)
    except MapperError as error:
        raise click.ClickException(str(error)) from None


# -- probe ------------------------------------------------------------------------------------


@main.command()
@click.option("--upstream", required=True, metavar="URL",
              help="Base URL of the upstream, with or without /v1 (both are tried).")
@click.option("--model", required=True, help="Model id to send the test requests for.")
@click.option("--api-key-env", metavar="VAR",
              help="Environment variable holding the upstream key (sent as Bearer, never printed).")
@click.option("--api", type=click.Choice(["chat", "responses"]), default="chat", show_default=True,
              help="Which API to probe.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds allowed for each request.")
@click.option("--write-overlay", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="Write an overlay on openai-chat that fixes what was found.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def probe(upstream: str, model: str, api_key_env: str | None, api: str, timeout: float,
          write_overlay: Path | None, as_json: bool) -> None:
    """Send small real requests to an upstream and report which OpenAI features work.

    Checks /models, a minimal call, the system and developer roles, max_tokens against
    max_completion_tokens, stream and stream usage, function tools, tool_choice required, parallel
    tool calls, json_schema output, an inline image, reasoning fields, /v1/responses and the error
    body. Exits 1 when the basic call fails, even if /models answers.
    """
    import os

    from .engine.probe import run

    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if api_key is None:
            # name the variable only when it looks like one, never echo a pasted key
            looks_like_name = api_key_env.replace("_", "").isalnum() and api_key_env.upper() == api_key_env
            hint = f" {api_key_env}" if looks_like_name else ""
            raise click.UsageError(f"the environment variable{hint} given with --api-key-env is not set")
    try:
        result = run(upstream, model, api_key=api_key, api=api, timeout=timeout,
                     write_overlay=write_overlay, as_json=as_json)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(result.output, nl=False)
    sys.exit(result.exit_code)


if __name__ == "__main__":
    main()
