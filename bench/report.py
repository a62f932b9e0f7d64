"""From raw figures to RESULTS.md: medians over rounds, overheads against direct, ratios.

Pure functions over the JSON that ``run.py`` writes, so a report can be rebuilt from an old run:

    python -m bench.report bench/out/results-<stamp>.json [--out bench/RESULTS.md]

Every proxy figure is a median over the interleaved rounds. Overheads are computed within a round
(target minus direct, same scenario, measured minutes apart at most) and then the median is taken.
Ratios put mapper against the reference pass-through of the same run: for overheads, CPU and memory
lower is better and the target is a ceiling; for req/s higher is better.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import orjson

ANALYSIS = Path(__file__).with_name("ANALYSIS.md")

Json = Any

TARGETS = {
    "overhead": 1.5,  # proxy latency overhead <= 1.5x the reference pass-through
    "cpu": 1.5,  # CPU per request <= 1.5x (issue 12; issue 7 asked 2x)
    "ttfb_ms": 1.0,  # paced streams: time to first byte within 1 ms of direct
    "conversion": 2.0,  # engine conversion <= 2x the hand-written converter
    "event_us": 10.0,  # <= 10 us per streamed event
    "memory_mb": 100.0,  # RSS growth with 1,000 concurrent streams < 100 MB
}


# -- aggregation -----------------------------------------------------------------------------------


def _median(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(kept) if kept else None


def aggregate(runs: list[Json]) -> dict[str, dict[str, Json]]:
    """{scenario: {target: medians}} with overheads against the same round's direct run."""
    by_cell: dict[tuple[str, str], list[Json]] = defaultdict(list)
    direct: dict[tuple[str, int], Json] = {}
    for run in runs:
        by_cell[(run["scenario"], run["target"])].append(run)
        if run["target"] == "direct":
            direct[(run["scenario"], run["round"])] = run
    table: dict[str, dict[str, Json]] = defaultdict(dict)
    for (scenario, target), cell in by_cell.items():
        def overhead(field: str) -> float | None:
            return _median(run[field] - direct[(scenario, run["round"])][field]
                           for run in cell if (scenario, run["round"]) in direct
                           and run.get("completed") and direct[(scenario, run["round"])].get("completed"))
        table[scenario][target] = {
            "rounds": len(cell),
            "p50_ms": _median(r["p50_ms"] for r in cell),
            "p99_ms": _median(r["p99_ms"] for r in cell),
            "rps": _median(r["rps"] for r in cell),
            "ttfb_p50_ms": _median(r["ttfb_p50_ms"] for r in cell),
            "ttfb_p99_ms": _median(r["ttfb_p99_ms"] for r in cell),
            "proxy_cpu_ms_per_req": _median(r.get("proxy_cpu_ms_per_req") for r in cell),
            "upstream_cpu_ms_per_req": _median(r.get("upstream_cpu_ms_per_req") for r in cell),
            "driver_cpu_ms_per_req": _median(r.get("driver_cpu_ms_per_req") for r in cell),
            "driver_core_busy": _median(r.get("driver_core_busy") for r in cell),
            "other_load": _median(r.get("other_load") for r in cell),
            "completed": sum(r["completed"] for r in cell),
            "errors": sum(r["errors"] for r in cell),
            "timeouts": sum(r["timeouts"] for r in cell),
            "error_samples": [s for r in cell for s in r.get("error_samples", [])][:3],
            "overhead_p50_ms": overhead("p50_ms") if target != "direct" else None,
            "overhead_p99_ms": overhead("p99_ms") if target != "direct" else None,
            "ttfb_overhead_p50_ms": overhead("ttfb_p50_ms") if target != "direct" else None,
        }
    return table


# An overhead of the reference below this is within the noise; a ratio against it means nothing.
NOISE_FLOOR_MS = 0.1


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference <= 0:
        return None
    return value / reference


# -- formatting ------------------------------------------------------------------------------------


def _ms(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _x(value: float | None) -> str:
    return "" if value is None else f" ({value:.2f}×)"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def _proxy_table(scenario_keys: list[str], table: Json, availability: Json, stream: bool) -> list[str]:
    head = ["c", "target", "p50 ms", "p99 ms", "overhead p50 ms", "overhead p99 ms", "req/s",
            "proxy CPU ms/req"]
    if stream:
        head += ["TTFB p50 ms", "TTFB overhead p50 ms"]
    head += ["driver core busy", "other load", "errors"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in scenario_keys:
        cells = table.get(key, {})
        reference = cells.get("reference") or {}
        concurrency = key.rsplit("/c", 1)[1]
        for target in ("direct", "reference", "mapper"):
            figures = cells.get(target)
            if figures is None:
                why = (availability.get(key.rsplit("/", 1)[0]) or {}).get(target) or "not measured"
                lines.append(f"| {concurrency} | {target} | not available yet: {_one_line(why)} |"
                             + " |" * (len(head) - 3))
                continue
            is_mapper = target == "mapper"

            def vs(field: str) -> str:
                base = reference.get(field)
                if not is_mapper or base is None:
                    return ""
                if field.endswith("_ms") and base < NOISE_FLOOR_MS:
                    return " (ref ≈ 0)"  # a ratio of noise is no figure
                if figures[field] is None or figures[field] < 0:
                    return ""  # mapper's own overhead is within the noise
                return _x(ratio(figures[field], base))

            row = [concurrency, target, _ms(figures["p50_ms"]), _ms(figures["p99_ms"]),
                   _ms(figures["overhead_p50_ms"]) + vs("overhead_p50_ms"),
                   _ms(figures["overhead_p99_ms"]) + vs("overhead_p99_ms"),
                   _ms(figures["rps"], 0) + vs("rps"),
                   _ms(figures["proxy_cpu_ms_per_req"], 3) + vs("proxy_cpu_ms_per_req")]
            if stream:
                row += [_ms(figures["ttfb_p50_ms"]),
                        _ms(figures["ttfb_overhead_p50_ms"]) + vs("ttfb_overhead_p50_ms")]
            busy, other = figures.get("driver_core_busy"), figures.get("other_load")
            row += ["—" if busy is None else f"{busy:.0%}", "—" if other is None else f"{other:.0%}",
                    f"{figures['errors']}+{figures['timeouts']} t/o"
                    if figures["timeouts"] else str(figures["errors"])]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def _one_line(text: str, limit: int = 160) -> str:
    flat = " ".join(str(text).split()).replace("|", "/")
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _proxy_section(title: str, section: Json, directions: list[Json]) -> list[str]:
    table = aggregate(section["runs"])
    lines = [f"## {title}", ""]
    if section.get("note"):
        lines += [section["note"], ""]
    for direction in directions:
        for stream in (False, True):
            mode = "stream" if stream else "json"
            keys = [k for k in section["scenarios"] if k.startswith(f"{direction['key']}/{mode}/")]
            if not keys:
                continue
            lines += [f"### {direction['title']}, {'streamed' if stream else 'non-streamed'}", ""]
            lines += _proxy_table(keys, table, section.get("availability", {}), stream)
            lines.append("")
    return lines


def _mapper_ratios(table: Json, field: str) -> list[float]:
    """mapper ÷ reference for ``field`` in every cell where both exist and the base is not noise."""
    found = []
    for cells in table.values():
        mapper, reference = cells.get("mapper"), cells.get("reference")
        if not mapper or not reference or reference.get(field) is None:
            continue
        if field.endswith("_ms") and reference[field] < NOISE_FLOOR_MS:
            continue
        value = ratio(mapper[field], reference[field])
        if value is not None and value >= 0:
            found.append(value)
    return found


def _summary_rows(results: Json) -> list[str]:
    """One row per target of issues 7 and 12: the median cell, the worst cell, and the verdict."""
    rows = ["| target (issues 7, 12) | median cell | worst cell | verdict (worst cell) |",
            "|---|---|---|---|"]
    table = aggregate(results["proxy"]["runs"]) if results.get("proxy") else {}
    paced = aggregate(results["paced"]["runs"]) if results.get("paced") else {}
    rows.append(_target_row("proxy latency overhead, p50 ≤ 1.5× reference",
                            _mapper_ratios(table, "overhead_p50_ms"), "×", TARGETS["overhead"]))
    rows.append(_target_row("proxy latency overhead, p99 ≤ 1.5× reference",
                            _mapper_ratios(table, "overhead_p99_ms"), "×", TARGETS["overhead"]))
    rows.append(_target_row("proxy CPU per request ≤ 1.5× reference",
                            _mapper_ratios(table, "proxy_cpu_ms_per_req"), "×", TARGETS["cpu"]))
    rows.append(_target_row("paced-stream TTFB within 1 ms of direct (p50)",
                            [cells["mapper"]["ttfb_overhead_p50_ms"] for cells in paced.values()
                             if cells.get("mapper")], " ms", TARGETS["ttfb_ms"]))
    micro_rows = (results.get("micro") or {}).get("rows", [])
    rows.append(_target_row("engine conversion ≤ 2× hand-written",
                            [r["ratio"] for r in micro_rows
                             if r.get("ratio") is not None and r["unit"] == "call"],
                            "×", TARGETS["conversion"]))
    rows.append(_target_row("≤ 10 µs per streamed event (engine, per upstream chunk)",
                            [r["engine_us"] for r in micro_rows
                             if r["unit"] == "chunk" and r.get("engine_us") is not None],
                            " µs", TARGETS["event_us"]))
    rows.append(_target_row("RSS growth, 1,000 concurrent streams < 100 MB",
                            [m["growth_mib"] * 1.048576 for m in (results.get("memory") or {}).get("rows", [])
                             if m["target"] == "mapper" and m.get("growth_mib") is not None],
                            " MB", TARGETS["memory_mb"], strict=True))
    return rows


def _target_row(name: str, values: list[float], unit: str, limit: float, strict: bool = False) -> str:
    kept = [v for v in values if v is not None]
    if not kept:
        return f"| {name} | not measured (the mapper part is not available) | | n/a |"
    worst = max(kept)
    ok = worst < limit if strict else worst <= limit
    return (f"| {name} | {statistics.median(kept):.2f}{unit} | {worst:.2f}{unit} | "
            f"{_verdict(ok)} |")


def _by_target(runs: list[Json]) -> dict[tuple[bool, str], dict[str, float | None]]:
    grouped: dict[tuple[bool, str], list[Json]] = defaultdict(list)
    for run in runs:
        grouped[(run["stream"], run["target"])].append(run)
    return {key: {field: _median(r.get(field) for r in rows)
                  for field in ("proxy_cpu_ms_per_req", "p50_ms", "p99_ms", "rps", "errors")}
            for key, rows in grouped.items()}


def _section(title: str, intro: str, columns: list[str], rows: Iterable[list[str]]) -> list[str]:
    """A titled Markdown table."""
    return [f"## {title}", "", intro, "", "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns), *("| " + " | ".join(row) + " |" for row in rows), ""]


def _servers_section(servers: Json) -> list[str]:
    table = _by_target(servers["runs"])
    rows = []
    for stream in (False, True):
        reference = table.get((stream, "reference"), {})
        for target in ("reference", *servers["names"]):
            cells = table.get((stream, target))
            if not cells:
                continue

            def shown(field: str, digits: int) -> str:
                value = cells[field]
                if target == "reference":
                    return _ms(value, digits)
                return _ms(value, digits) + _x(ratio(value, reference.get(field)))
            rows.append(["stream" if stream else "json", target, shown("proxy_cpu_ms_per_req", 3),
                         shown("p50_ms", 2), _ms(cells["p99_ms"]), f"{cells['rps']:.0f}",
                         f"{cells['errors']:.0f}"])
    return _section(
        "HTTP servers: the same proxy app under each",
        f"Responses client → Chat upstream at c={servers['concurrency']}, medians of interleaved "
        "rounds; *(n×)* is against the reference pass-through of the same rounds. The server is "
        "chosen in bench/ANALYSIS.md from these figures and from the limits each can enforce.",
        ["answer", "server", "proxy CPU ms/req", "p50 ms", "p99 ms", "req/s", "errors"], rows)


def _workers_section(workers: Json) -> list[str]:
    rows = [["stream" if stream else "json", target.split("=")[1], f"{cells['rps']:.0f}",
             _ms(cells["p50_ms"]), _ms(cells["p99_ms"]), _ms(cells["proxy_cpu_ms_per_req"], 3)]
            for (stream, target), cells in sorted(_by_target(workers["runs"]).items())]
    return _section(
        "Workers: `--workers 2` against `--workers 1`",
        f"Responses client → Chat upstream at c={workers['concurrency']}; both proxies may use "
        "every CPU, which the load driver and the upstream share on this machine, so the second "
        "worker competes with them.",
        ["answer", "workers", "req/s", "p50 ms", "p99 ms", "proxy CPU ms/req"], rows)


def _large_section(large: Json) -> list[str]:
    upstream = {row["direction"]: row["bytes"] for row in large["rows"] if row["target"] == "direct"}
    rows = [[row["direction"], row["target"], str(row["status"]),
             f"{upstream.get(row['direction'], math.nan) / 1e6:.1f}", f"{row['bytes'] / 1e6:.1f}",
             f"{row['seconds']:.2f}",
             f"{upstream.get(row['direction'], math.nan) / 1e6 / row['seconds']:.0f}",
             "—" if row["proxy_cpu_s"] is None else f"{row['proxy_cpu_s']:.2f}",
             f"{row.get('driver_cpu_s', math.nan):.2f}"]
            for row in large["rows"]]
    return _section(
        f"Large streams: one answer of about {large['megabytes']:g} MB",
        "One streamed answer per direction and target (median of three), read by the raw driver "
        "as fast as it arrives. A Responses stream repeats the whole text in its closing events "
        "(`output_text.done`, `content_part.done`, `output_item.done`, `response.completed`), so "
        "a Responses client receives about five times the bytes of the chat stream. *Proxy CPU* "
        "against *seconds* says whether the proxy was the bottleneck; the driver (Python, on the "
        "upstream's core) reads the body without keeping it.",
        ["direction", "target", "status", "upstream MB", "MB received", "seconds",
         "upstream MB/s", "proxy CPU s", "driver CPU s"], rows)


def _micro_section(micro: Json) -> list[str]:
    lines = ["## Conversion cost: engine against the hand-written converter", ""]
    settings = micro.get("settings", {})
    lines += [f"Median over {settings.get('repeat')} interleaved repeats of ≥ "
              f"{settings.get('min_time_s')} s each, garbage collector off during a repeat "
              "(`timeit` style). Both sides produce the same documents (checked before timing, ids "
              "and timestamps aside). Hand-written: `bench/reference_converters.py` and "
              "`bench/reference_stream.py`.", "",
              "| case | engine µs | hand-written µs | engine / hand-written | note |",
              "|---|---|---|---|---|"]
    for row in micro.get("rows", []):
        unit = "/chunk" if row["unit"] == "chunk" else ""
        engine = row.get("engine_us")
        ref = row.get("reference_us")
        ratio_text = "—" if row.get("ratio") is None else f"{row['ratio']:.2f}×"
        lines.append(f"| {row['name']} | {_ms(engine)}{unit if engine is not None else ''} | "
                     f"{_ms(ref)}{unit if ref is not None else ''} | {ratio_text} | "
                     f"{_one_line(row.get('note') or '')} |")
    return lines + [""]


def _memory_section(memory: Json) -> list[str]:
    lines = ["## Memory: concurrent slow streams", "", memory.get("note", ""), "",
             "| direction | target | streams | completed | errors | peak open | RSS before MiB | "
             "peak MiB | growth MiB | KiB/stream | growth vs reference |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    reference = {m["direction"]: m for m in memory.get("rows", []) if m["target"] == "reference"}
    for row in memory.get("rows", []):
        if row.get("unavailable"):
            lines.append(f"| {row['direction']} | {row['target']} | not available yet: "
                         f"{_one_line(row['unavailable'])} |" + " |" * 8)
            continue
        ref = reference.get(row["direction"])
        versus = ratio(row["growth_mib"], ref["growth_mib"]) if ref and row["target"] == "mapper" else None
        errors = f"{row['errors']}+{row['timeouts']} t/o" if row["timeouts"] else str(row["errors"])
        lines.append(
            f"| {row['direction']} | {row['target']} | {row['streams']} | {row['completed']} | "
            f"{errors} | {row['peak_open_streams']} | {row['baseline_mib']:.1f} | "
            f"{row['peak_mib']:.1f} | {row['growth_mib']:.1f} | {row['growth_kib_per_stream']:.1f} | "
            f"{'—' if versus is None else f'{versus:.2f}×'} |")
    return lines + [""]


def _driver_section(check: Json) -> list[str]:
    if not check:
        return []
    lines = ["## Load driver check", "",
             "The driver shares a core with the upstream, so its own cost matters. Both clients, "
             "direct to the upstream, same run (medians):", "",
             "| scenario | client | req/s | driver CPU ms/req | p50 ms |", "|---|---|---|---|---|"]
    for row in check.get("rows", []):
        lines.append(f"| {row['scenario']} | {row['client']} | {row['rps']:.0f} | "
                     f"{row['driver_cpu_ms_per_req']:.3f} | {row['p50_ms']:.2f} |")
    return lines + ["", check.get("conclusion", ""), ""]


def _failures(failures: list[str] | None) -> list[str]:
    if not failures:
        return []
    return ["## Failures", "", "Parts of this run failed; their figures are missing below.", "",
            *[f"- {_one_line(failure, 600)}" for failure in failures], ""]


def derived_notes(results: Json) -> list[str]:
    """What a reader needs to weigh the figures, worked out from them."""
    notes = []
    meta = results["meta"]
    before, after = meta.get("source"), meta.get("source_after")
    if before and after and before != after:
        notes.append(f"**The engine changed during this run** (commit {before['commit']} with "
                     f"{len(before['uncommitted'])} uncommitted files at the start, {after['commit']} "
                     f"with {len(after['uncommitted'])} at the end): the phases measured different "
                     "code. Run it again for a consistent set of figures.")
    runs = [run for section in ("proxy", "paced") for run in (results.get(section) or {}).get("runs", [])]
    samples = [run["proxy_cpu_s"] for run in runs if run.get("proxy_cpu_s")]
    if samples:
        tick = 1 / meta.get("clock_ticks", 100)
        notes.append(f"The kernel counts CPU time in ticks of {tick * 1000:.0f} ms; the smallest proxy "
                     f"CPU sample here is {min(samples) / tick:.0f} ticks, the median "
                     f"{statistics.median(samples) / tick:.0f}. Paced streams use little CPU, so their "
                     "CPU figures are the coarsest.")
    table = aggregate((results.get("proxy") or {}).get("runs", []))
    capped = sorted(key for key, cells in table.items() if "/stream/" in key
                    and ((cells.get("reference") or {}).get("driver_core_busy") or 0) >= 0.9)
    if capped:
        notes.append("Streams on 2 cores: the canned upstream spends ~0.3 ms of CPU writing a "
                     "42-frame stream and the driver ~0.17 ms reading it, so their shared core "
                     "saturates near 2,000 streams/s. In " + ", ".join(capped) + " it was ≥ 90 % busy "
                     "while the reference ran: there direct and reference are both capped by that "
                     "core, the reference's overhead looks smaller than it is, and mapper's overhead "
                     "ratio is inflated. CPU per request is not affected; read that column.")
    notes.append("`mapper serve` runs with its defaults: one worker, the aiohttp upstream "
                 "transport, and one JSON log line per request (kept in the logs folder); the "
                 "reference pass-through logs nothing.")
    notes.append("TTFB on unpaced streams says little: the canned upstream writes a whole stream "
                 "in one go, so the first and last frames arrive almost together. The paced "
                 "table is the one to read for time to first byte.")
    micro_rows = (results.get("micro") or {}).get("rows", [])
    if any(row.get("engine_us") and not row.get("reference_us") for row in micro_rows):
        notes.append("The reverse direction (openai-responses) has engine figures only: bench/ has "
                     "no hand-written Chat→Responses converter to compare them with yet.")
    return notes


def render(results: Json) -> str:
    """The whole RESULTS.md."""
    meta = results["meta"]
    lines = [
        "# mapper benchmark results",
        "",
        f"{'**Smoke run: tiny counts, the figures mean nothing.** ' if meta.get('smoke') else ''}"
        f"Measured {meta['date']} with `{meta['command']}` (from the repository root; "
        f"{meta['seconds']:.0f} s).",
        "",
        "## Machine",
        "",
        f"- {meta['cpu']}, {meta['cpus']} CPUs available, {meta['memory']}; Linux {meta['kernel']}",
        f"- Python {meta['python']}; {meta['versions']}",
        f"- mapper: commit {meta.get('source', {}).get('commit', '?')}"
        + (f" plus uncommitted changes to {', '.join(meta['source']['uncommitted'])}"
           if meta.get("source", {}).get("uncommitted") else ""),
        f"- Core layout: {meta['layout']}",
        f"- Rounds: {meta['rounds']}, interleaved (direct, reference, mapper for each scenario, then "
        "the next scenario; all scenarios once per round). Every figure is the median over rounds.",
        f"- Load driver: {meta['client']} client, {meta['requests_note']}",
        "",
        *_failures(results.get("failures")),
        "## Against the targets",
        "",
        *_summary_rows(results),
        "",
        "Reading the tables: *overhead* is the target's latency minus direct's, same round; "
        "*(n×)* after a mapper figure is mapper ÷ reference pass-through, same run; *TTFB* is the "
        "time to the first byte of the response body (the first SSE frame); *proxy CPU* is "
        "utime+stime of the proxy process from `/proc/<pid>/stat` over the measured requests; "
        "*driver core busy* is the CPU the load driver and the upstream used on their shared core, "
        "over wall time (near 100 % means req/s is capped by the driver core, not the proxy); "
        "*other load* is CPU used by processes outside the bench during the measurement (all "
        "CPUs, from `/proc/stat`, in cores): the machine is shared, and this says how noisy a "
        "cell was. CPU per request is the figure least moved by that noise.",
        "",
    ]
    if ANALYSIS.is_file():  # the hand-written explanation of the misses (bench/ANALYSIS.md)
        lines += [ANALYSIS.read_text().strip(), ""]
    directions = results.get("directions", [])
    if results.get("proxy"):
        lines += _proxy_section("Proxy overhead, throughput and CPU", results["proxy"], directions)
    if results.get("paced"):
        lines += _proxy_section("Paced streams: time to first byte", results["paced"], directions)
    if results.get("memory"):
        lines += _memory_section(results["memory"])
    if results.get("servers"):
        lines += _servers_section(results["servers"])
    if results.get("workers"):
        lines += _workers_section(results["workers"])
    if results.get("large"):
        lines += _large_section(results["large"])
    if results.get("micro"):
        lines += _micro_section(results["micro"])
    lines += _driver_section(results.get("driver_check"))
    notes = list(dict.fromkeys([*(results.get("notes") or []), *derived_notes(results)]))
    lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results JSON written by bench.run")
    parser.add_argument("--out", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    text = render(orjson.loads(args.results.read_bytes()))
    if args.out:
        args.out.write_text(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
