"""Micro benchmarks: what one conversion costs in the engine against the hand-written reference.

For each benchmark payload the engine and the hand-written converters (``bench/reference_converters.py``, ``reference_stream.py``)
are first run once and
their outputs compared, ids and timestamps aside (``normalize``); a difference stops the bench with
the path of the first differing value, because timing two converters that do different work would
say nothing. Then both are timed the way ``timeit`` does it: a call count is found so that one
repeat lasts ``min_time`` seconds, the garbage collector is off during a repeat, and repeats of the
engine and of the reference alternate so that a noisy neighbour hurts both alike. The report quotes
the median over repeats (and keeps the minimum in the JSON).

Cases:

* ``request``: Responses request -> chat request (the agent turn, and a one-line request);
* ``response``: chat.completion -> Response (a 110-word answer with usage, and two tool calls);
* ``… bytes``: the same with ``orjson`` parsing and serialising around it, as the proxy does;
* ``stream``: chat SSE bytes in -> Responses SSE bytes out through ``StreamSession``, per upstream
  chunk (a fresh session per stream, so its set-up is counted), once the engine has streams;
* the reverse direction (``openai-responses``), engine only, once that mapping exists;
* ``request validation``: the check ``Mapping.convert_request`` runs before converting
  (``engine.validation``), engine only, for the same request payloads. The conversion rows above
  leave it out (the mappings are loaded with ``validate_requests: false``), so that they compare
  the same work as the hand-written converters; the proxy pays both.

    python -m bench.micro                 # all cases, printed as a table
    python -m bench.micro --profile request   # where the engine's time goes (cProfile)
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import re
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import orjson

from . import payloads
from . import reference_converters as reference
from .reference_stream import ReferenceStream

Json = Any

TARGET_RATIO = 2.0  # issue 7: engine conversion <= 2x the hand-written converter
TARGET_EVENT_US = 10.0  # issue 7: <= 10 us per streamed event


@dataclass
class Case:
    """One thing to time: the engine's function, the reference's (if any), and the per-call unit."""

    name: str
    engine: Callable[[], Json] | None
    reference: Callable[[], Json] | None
    per_call: int = 1  # units per call (upstream chunks for a stream)
    unit: str = "call"
    compare: Callable[[Json, Json], str | None] | None = None
    note: str = ""


# -- building the cases ----------------------------------------------------------------------------


def _engine_mapping(name: str) -> tuple[Any, str | None]:
    try:
        from mapper.engine import builtin_names, load_mapping
        if name not in builtin_names():
            return None, f"the `{name}` mapping does not exist yet"
        # conversion only: the hand-written converters do not validate (see _validation_cases)
        return load_mapping(name, options={"validate_requests": False}), None
    except Exception as error:  # noqa: BLE001 - anything here means "not available"
        return None, f"mapping `{name}` does not load: {error!r}"


class MicroError(RuntimeError):
    """The micro benchmarks cannot run: the engine does not load, or disagrees with the reference."""


def build_cases() -> list[Case]:
    mapping, missing = _engine_mapping("openai-chat")
    if mapping is None:
        raise MicroError(f"cannot run the micro benchmarks: {missing}")
    cases: list[Case] = []
    for label, request in (("agent turn", payloads.responses_request()),
                           ("one-line input", payloads.simple_request())):
        cases.append(Case(f"request: {label}",
                          lambda r=request: mapping.convert_request(r),
                          lambda r=request: reference.request_to_chat(r),
                          compare=_same_document))
    request = payloads.responses_request()
    for label, completion in (("110-word answer + usage", payloads.chat_completion()),
                              ("two tool calls", payloads.tool_call_completion())):
        cases.append(Case(f"response: {label}",
                          lambda c=completion: mapping.convert_response(c, request=request),
                          lambda c=completion: reference.chat_to_response(c, request),
                          compare=_same_document))
    request_bytes = orjson.dumps(payloads.responses_request())
    cases.append(Case("request bytes→bytes: agent turn",
                      lambda: orjson.dumps(mapping.convert_request(orjson.loads(request_bytes))),
                      lambda: orjson.dumps(reference.request_to_chat(orjson.loads(request_bytes))),
                      compare=_same_json_bytes))
    completion_bytes = orjson.dumps(payloads.chat_completion())
    cases.append(Case("response bytes→bytes: 110-word answer",
                      lambda: orjson.dumps(mapping.convert_response(orjson.loads(completion_bytes),
                                                                    request=request)),
                      lambda: orjson.dumps(reference.chat_to_response(orjson.loads(completion_bytes),
                                                                      request)),
                      compare=_same_json_bytes))
    cases.append(_stream_case(mapping))
    cases.extend(_reverse_cases())
    cases.extend(_validation_cases())
    return cases


def _validation_cases() -> list[Case]:
    """What checking a request the way the client API would costs, before it is converted."""
    try:
        from mapper.engine.validation import request_validator
    except ImportError as error:
        return [Case("request validation", None, None, note=f"not available: {error}")]
    responses, chat = request_validator("openai.responses"), request_validator("openai.chat")
    note = "engine only: runs before the conversion, not included in the rows above"
    return [
        Case("request validation: agent turn", lambda r=payloads.responses_request(): responses(r),
             None, note=note),
        Case("request validation: one-line input", lambda r=payloads.simple_request(): responses(r),
             None, note=note),
        Case("reverse request validation: agent turn", lambda r=payloads.chat_request(): chat(r),
             None, note=note),
    ]


def _stream_case(mapping: Any) -> Case:
    frames = payloads.chat_sse_frames()
    request = payloads.responses_request(stream=True)

    def run_reference() -> bytes:
        session = ReferenceStream(request)
        out = [session.feed(frame) for frame in frames]
        out.append(session.close())
        return b"".join(out)

    engine_run, why = None, ""
    try:
        from mapper.engine.streaming import StreamSession

        def run_engine() -> bytes:
            session = StreamSession(mapping, request=request)
            out = [session.feed(frame) for frame in frames]
            out.append(session.close())
            return b"".join(out)

        run_engine()  # raises until the stream runtime has landed
        engine_run = run_engine
    except Exception as error:  # noqa: BLE001 - not landed yet, or broken: both mean no figure
        why = f"engine streams not available yet: {type(error).__name__}: {error}"
    return Case("stream: 40-chunk answer, per upstream chunk", engine_run, run_reference,
                per_call=len(frames), unit="chunk", compare=_same_event_stream, note=why)


def _reverse_cases() -> list[Case]:
    mapping, missing = _engine_mapping("openai-responses")
    if mapping is None:
        return [Case("reverse (chat client → Responses upstream)", None, None,
                     note=f"not available yet: {missing}")]
    chat_request = payloads.chat_request()
    response = payloads.response_body()
    note = "engine only: no hand-written reverse converter in bench/ yet"
    return [
        Case("reverse request: agent turn", lambda: mapping.convert_request(chat_request), None,
             note=note),
        Case("reverse response: 110-word answer",
             lambda: mapping.convert_response(response, request=chat_request), None, note=note),
    ]


# -- comparing outputs ---------------------------------------------------------------------------

_TIMESTAMPS = frozenset(("created_at", "completed_at"))
_ID_KEYS = frozenset(("id", "item_id"))
_MINTED = re.compile(r"^(resp|msg|fc|rs)_")


def normalize(document: Json) -> Json:
    """Drop timestamps and replace minted ids by their order of first appearance."""
    seen: dict[str, str] = {}

    def walk(value: Json, key: str | None) -> Json:
        if value.__class__ is dict:
            return {k: walk(v, k) for k, v in value.items() if k not in _TIMESTAMPS}
        if value.__class__ is list:
            return [walk(v, key) for v in value]
        if key in _ID_KEYS and value.__class__ is str and _MINTED.match(value):
            return seen.setdefault(value, f"<{value.split('_', 1)[0]} #{len(seen) + 1}>")
        return value

    return walk(document, None)


def first_difference(left: Json, right: Json, path: str = "$") -> str | None:
    """The path of the first value that differs between two JSON documents, with both values."""
    if left.__class__ is dict and right.__class__ is dict:
        for key in list(left) + [k for k in right if k not in left]:
            if key not in left or key not in right:
                return f"{path}.{key}: engine {left.get(key, '<missing>')!r} vs reference " \
                       f"{right.get(key, '<missing>')!r}"
            found = first_difference(left[key], right[key], f"{path}.{key}")
            if found:
                return found
        return None
    if left.__class__ is list and right.__class__ is list:
        for index, (a, b) in enumerate(zip(left, right)):
            found = first_difference(a, b, f"{path}[{index}]")
            if found:
                return found
        if len(left) != len(right):
            return f"{path}: engine has {len(left)} elements, reference {len(right)}"
        return None
    return None if left == right else f"{path}: engine {left!r} vs reference {right!r}"


def _same_document(engine_out: Json, reference_out: Json) -> str | None:
    return first_difference(normalize(engine_out), normalize(reference_out))


def _same_json_bytes(engine_out: bytes, reference_out: bytes) -> str | None:
    return _same_document(orjson.loads(engine_out), orjson.loads(reference_out))


def sse_events(blob: bytes) -> list[Json]:
    """The JSON events of an SSE body, ``[DONE]`` left out (whether it is sent is a policy)."""
    events = []
    for frame in blob.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].lstrip(b" ") for line in frame.split(b"\n") if line.startswith(b"data:")]
        if data and data != [b"[DONE]"]:
            events.append(orjson.loads(b"\n".join(data)))
    return events


def _same_event_stream(engine_out: bytes, reference_out: bytes) -> str | None:
    return _same_document(sse_events(engine_out), sse_events(reference_out))


# -- timing --------------------------------------------------------------------------------------


def _calls_for(function: Callable[[], Json], min_time: float) -> int:
    number = 1
    while True:
        started = time.perf_counter()
        for _ in range(number):
            function()
        if time.perf_counter() - started >= min_time / 5 or number >= 1 << 20:
            elapsed = time.perf_counter() - started
            return max(1, int(number * min_time / max(elapsed, 1e-9)))
        number *= 4


def _repeat_us(function: Callable[[], Json], number: int) -> float:
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        started = time.perf_counter()
        for _ in range(number):
            function()
        return (time.perf_counter() - started) / number * 1e6
    finally:
        if gc_was_on:
            gc.enable()


def time_case(case: Case, min_time: float, repeat: int) -> dict[str, Any]:
    """Check that both sides agree, then time them with interleaved repeats."""
    row: dict[str, Any] = {"name": case.name, "unit": case.unit, "note": case.note}
    if case.engine is not None and case.reference is not None and case.compare is not None:
        difference = case.compare(case.engine(), case.reference())
        if difference:
            raise MicroError(f"{case.name}: the engine and the hand-written converter disagree "
                                 f"at {difference}; fix bench/reference_converters.py (or the "
                                 "engine) before timing them")
        row["outputs_match"] = True
    subjects = [(side, fn) for side, fn in (("engine", case.engine), ("reference", case.reference))
                if fn is not None]
    numbers = {side: _calls_for(fn, min_time) for side, fn in subjects}
    samples: dict[str, list[float]] = {side: [] for side, _ in subjects}
    for _ in range(repeat):
        for side, fn in subjects:
            samples[side].append(_repeat_us(fn, numbers[side]) / case.per_call)
    for side, values in samples.items():
        row[f"{side}_us"] = statistics.median(values)
        row[f"{side}_min_us"] = min(values)
        row[f"{side}_calls_per_repeat"] = numbers[side]
    if "engine_us" in row and "reference_us" in row:
        row["ratio"] = row["engine_us"] / row["reference_us"]
    return row


def run(min_time: float = 0.2, repeat: int = 9) -> dict[str, Any]:
    """Every case, as the rows ``report.py`` renders."""
    rows = [time_case(case, min_time, repeat) for case in build_cases()]
    return {"settings": {"min_time_s": min_time, "repeat": repeat, "gc": "off during a repeat"},
            "rows": rows, "target_ratio": TARGET_RATIO, "target_event_us": TARGET_EVENT_US}


# -- profiling -------------------------------------------------------------------------------------


def profile(name: str, calls: int = 20000, top: int = 25) -> None:
    """Print where the engine spends its time on one kind of case (cProfile, by own time)."""
    chosen = [case for case in build_cases() if case.name.startswith(name) and case.engine]
    if not chosen:
        raise MicroError(f"no engine case starts with {name!r}")
    case = chosen[0]
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        case.engine()
    profiler.disable()
    print(f"{case.name}: {calls} calls")
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per repeat")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--profile", metavar="CASE", help="profile the engine on a case instead "
                                                          "(request, response, stream, ...)")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile)
        return
    result = run(args.min_time, args.repeat)
    for row in result["rows"]:
        engine = row.get("engine_us")
        ref = row.get("reference_us")
        ratio = row.get("ratio")
        print(f"{row['name']:<48} engine {engine if engine is None else f'{engine:8.2f}'} µs"
              f"  reference {ref if ref is None else f'{ref:8.2f}'} µs"
              f"  ratio {ratio if ratio is None else f'{ratio:5.2f}x'}  {row['note']}")


if __name__ == "__main__":
    main()
