"""The one command: start the servers, measure everything, stop the servers, write the report.

    python -m bench.run              # the full bench (about 6 minutes), writes bench/RESULTS.md
    python -m bench.run --smoke      # seconds long, checks that the bench still works (CI)
    python bench/run.py ...          # the same, from a path
    python -m bench.run --rounds 3 --skip memory --mapper-arg=--upstream-transport=httpx

Run it from the repository root with the test extras installed (``pip install -e '.[test]'``: aiohttp,
uvloop, orjson). Raw figures go to ``bench/out/`` (gitignored), server logs to ``bench/out/logs/``.

What happens, in order:

1. **Proxy stack** (``bench/stack.py``): the canned upstream, the reference pass-through and, when
   it exists, ``mapper serve`` for each direction, each in its own process group, pinned with
   ``sched_setaffinity`` (``procs.plan_cores``: the proxy under test gets a core to itself, the load
   driver - this process - and the upstream share the other). A check request goes to every target;
   a target that fails it is reported as "not available yet" with the reason, and skipped.
2. **Load driver check**: the raw-socket driver and an aiohttp client, direct to the upstream, so the
   report shows what the driver itself costs.
3. **Rounds**: for each round, for each scenario (direction × streamed or not × concurrency 1, 8,
   64), direct, then the reference, then mapper: a warm-up, then a fixed number of requests bounded
   in time, with the proxy's CPU read from ``/proc/<pid>/stat`` before and after.
4. **Paced streams**: a second stack whose upstream sleeps before every frame; time to first byte.
5. **Memory**: a third stack with a slow upstream; RSS growth holding 1,000 streams (``memory.py``).
6. **Servers, workers, large streams** (``front.py``): the proxy app under each installed HTTP
   server; ``--workers 2`` against 1; a 50 MB streamed answer in both directions.
7. **Micro benchmarks** (``micro.py``), in this process, after every server has stopped.

Every child process is stopped in a ``finally`` (``ProcessSet``), also on Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``import bench`` work
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import datetime  # noqa: E402
import importlib.metadata  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass, field, replace  # noqa: E402
from typing import Any  # noqa: E402

import orjson  # noqa: E402

from bench import front, micro, report  # noqa: E402
from bench.load import PhaseResult, RawDriver, Request, ResponseFailed, make_driver  # noqa: E402
from bench.memory import rss_growth  # noqa: E402
from bench.procs import CoreLayout, ProcessSet, pin, plan_cores, system_busy_seconds  # noqa: E402
from bench.stack import Stack, start_stack, stop_stack  # noqa: E402
from bench.targets import DIRECTIONS, TARGETS, Scenario, check_body, request_for, scenarios  # noqa: E402
from bench.upstream import install_uvloop  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
Json = Any


@dataclass(frozen=True)
class Config:
    """How much of everything to run; ``FULL`` and ``SMOKE`` below."""

    smoke: bool
    rounds: int
    concurrencies: tuple[int, ...]
    json_requests: dict[int, int]
    stream_requests: dict[int, int]
    time_limit: float  # seconds of issuing requests per measurement
    grace: float  # extra seconds for requests in flight
    paced_delay_ms: float
    paced_concurrencies: tuple[int, ...]
    paced_requests: dict[int, int]
    paced_rounds: int
    memory_streams: int
    memory_delay_ms: float
    memory_warmup: int
    memory_time_limit: float
    memory_settle: float
    micro_min_time: float
    micro_repeat: int
    driver_check: dict[str, int] = field(default_factory=dict)
    ready_timeout: float = 30.0

    def requests(self, stream: bool, concurrency: int) -> int:
        return (self.stream_requests if stream else self.json_requests)[concurrency]

    def warmup(self, concurrency: int, requests: int) -> int:
        return concurrency if self.smoke else max(2 * concurrency, requests // 10)


FULL = Config(
    smoke=False, rounds=5, concurrencies=(1, 8, 64),
    json_requests={1: 1500, 8: 4000, 64: 6000}, stream_requests={1: 400, 8: 1000, 64: 1500},
    time_limit=5.0, grace=10.0,
    paced_delay_ms=2.0, paced_concurrencies=(1, 8), paced_requests={1: 24, 8: 160}, paced_rounds=3,
    memory_streams=1000, memory_delay_ms=125.0, memory_warmup=20, memory_time_limit=60.0, memory_settle=0.5,
    micro_min_time=0.2, micro_repeat=9, driver_check={"json": 4000, "stream": 1000},
)
SMOKE = Config(
    smoke=True, rounds=1, concurrencies=(1, 8, 64),
    json_requests={1: 10, 8: 24, 64: 64}, stream_requests={1: 5, 8: 16, 64: 64},
    time_limit=1.0, grace=3.0,
    paced_delay_ms=1.0, paced_concurrencies=(4,), paced_requests={4: 8}, paced_rounds=1,
    memory_streams=40, memory_delay_ms=2.0, memory_warmup=4, memory_time_limit=5.0,
    memory_settle=0.05,
    micro_min_time=0.005, micro_repeat=2, driver_check={"json": 200, "stream": 40},
    ready_timeout=15.0,
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- one measurement -------------------------------------------------------------------------------


class Bench:
    """The measurements of one run, sharing the layout, the client and the raw results."""

    def __init__(self, config: Config, layout: CoreLayout, client: str,
                 mapper_extra: tuple[str, ...] = ()) -> None:
        self.config = config
        self.layout = layout
        self.client = client
        self.mapper_extra = mapper_extra  # extra `mapper serve` arguments
        self.notes: list[str] = []

    async def measure(self, stack: Stack, scenario: Scenario, target: str, requests: int) -> Json:
        """Warm up, then run ``requests`` requests; figures plus CPU per request of each process."""
        direction = scenario.direction
        path, body, _ = request_for(scenario, target)
        url = stack.origin(target, direction) + path
        proxy = stack.proxy(target, direction)
        driver = make_driver(self.client, Request(url, body, scenario.stream), scenario.concurrency)
        config = self.config
        await driver.connect()
        try:
            await driver.phase(config.warmup(scenario.concurrency, requests), config.time_limit,
                               config.grace)
            proxy_before = proxy.cpu_seconds() if proxy else 0.0
            upstream_before = stack.upstream.cpu_seconds()
            busy_before = system_busy_seconds()
            result = await driver.phase(requests, config.time_limit, config.grace)
            busy = system_busy_seconds() - busy_before
            proxy_after = proxy.cpu_seconds() if proxy else 0.0
            upstream_after = stack.upstream.cpu_seconds()
        finally:
            await driver.close()
        return self._figures(result, proxy is not None, proxy_after - proxy_before,
                             upstream_after - upstream_before, busy)

    def _figures(self, result: PhaseResult, has_proxy: bool, proxy_cpu: float,
                 upstream_cpu: float, system_busy: float) -> Json:
        figures = result.summary()
        done = result.completed
        ours = result.driver_cpu + upstream_cpu + proxy_cpu
        figures["other_load"] = (max(0.0, system_busy - ours) / result.elapsed
                                 if result.elapsed > 0 else None)
        figures["proxy_cpu_ms_per_req"] = proxy_cpu / done * 1e3 if has_proxy and done else None
        figures["proxy_cpu_s"] = proxy_cpu if has_proxy else None
        figures["upstream_cpu_ms_per_req"] = upstream_cpu / done * 1e3 if done else None
        if result.elapsed > 0:
            shared = self.layout.driver == self.layout.upstream
            busy = (result.driver_cpu + upstream_cpu if shared
                    else max(result.driver_cpu, upstream_cpu))
            figures["driver_core_busy"] = busy / result.elapsed
        return figures

    async def check_targets(self, stack: Stack, cells: list[tuple[Any, bool]]) -> Json:
        """Send one checked request to every target; {direction/mode: {target: reason or None}}."""
        availability: Json = {}
        for direction, stream in cells:
            key = f"{direction.key}/{'stream' if stream else 'json'}"
            availability[key] = {}
            for target in TARGETS:
                if target == "mapper" and direction.key in stack.missing:
                    availability[key][target] = stack.missing[direction.key]
                    continue
                scenario = Scenario(direction, stream, 1)
                availability[key][target] = await self.check_target(stack, scenario, target)
                if availability[key][target]:
                    log(f"  {key} {target}: not available: {availability[key][target][:200]}")
        return availability

    async def check_target(self, stack: Stack, scenario: Scenario, target: str) -> str | None:
        path, body, api = request_for(scenario, target)
        driver = RawDriver(Request(stack.origin(target, scenario.direction) + path, body,
                                   scenario.stream), 1)
        try:
            status, answer = await driver.fetch()
        except (ResponseFailed, OSError, asyncio.TimeoutError) as error:
            return f"the check request failed: {error!r}"
        if status != 200:
            return f"the check request got HTTP {status}: {answer[:300]!r}"
        return check_body(api, scenario.stream, answer)

    async def rounds(self, stack: Stack, cells: list[Scenario], rounds: int,
                     requests_for: Any, availability: Json, label: str) -> list[Json]:
        """Interleaved rounds: every scenario once per round, direct, reference, mapper in turn."""
        runs = []
        for number in range(rounds):
            for scenario in cells:
                mode = f"{scenario.direction.key}/{'stream' if scenario.stream else 'json'}"
                for target in TARGETS:
                    if availability[mode].get(target):
                        continue
                    figures = await self.measure(stack, scenario, target, requests_for(scenario))
                    runs.append({"round": number, "scenario": scenario.key, "target": target,
                                 **figures})
                    log(f"  [{label} {number + 1}/{rounds}] {scenario.key:<34} {target:<9} "
                        + _progress(figures))
        return runs


def _progress(figures: Json) -> str:
    cpu, errors = figures["proxy_cpu_ms_per_req"], figures["errors"] + figures["timeouts"]
    text = f"p50 {figures['p50_ms']:7.2f} ms  {figures['rps']:7.0f} req/s"
    if cpu is not None:
        text += f"  proxy {cpu:.3f} ms CPU/req"
    if errors:
        text += f"  errors {errors}: {figures['error_samples'][:1]}"
    return text


# -- the phases ------------------------------------------------------------------------------------


async def proxy_phase(bench: Bench, procs: ProcessSet) -> Json:
    config = bench.config
    log("proxy: starting upstream, reference pass-through and mapper serve")
    stack = start_stack(procs, bench.layout, "proxy", 0.0, config.ready_timeout, bench.mapper_extra)
    try:
        cells = scenarios(config.concurrencies)
        availability = await bench.check_targets(
            stack, [(d, s) for d in DIRECTIONS for s in (False, True)])
        driver_check = await driver_check_phase(bench, stack)
        runs = await bench.rounds(stack, cells, config.rounds,
                                  lambda s: config.requests(s.stream, s.concurrency),
                                  availability, "round")
    finally:
        stop_stack(procs, stack)
    return {"proxy": {"scenarios": [s.key for s in cells], "availability": availability,
                      "runs": runs},
            "driver_check": driver_check}


async def driver_check_phase(bench: Bench, stack: Stack) -> Json:
    """The raw driver against an aiohttp client, direct to the upstream, interleaved."""
    config = bench.config
    rows: dict[tuple[str, str], list[Json]] = {}
    checks = [(Scenario(DIRECTIONS[0], False, 64), config.driver_check["json"]),
              (Scenario(DIRECTIONS[0], True, 8), config.driver_check["stream"])]
    for _ in range(1 if config.smoke else 3):
        for scenario, requests in checks:
            for client in ("raw", "aiohttp"):
                measured = await Bench(config, bench.layout, client).measure(
                    stack, scenario, "direct", requests)
                rows.setdefault((scenario.key, client), []).append(measured)
    table = []
    for (key, client), measured in rows.items():
        table.append({"scenario": f"direct {key}", "client": client,
                      "rps": statistics.median(m["rps"] for m in measured),
                      "driver_cpu_ms_per_req": statistics.median(m["driver_cpu_ms_per_req"]
                                                                 for m in measured),
                      "p50_ms": statistics.median(m["p50_ms"] for m in measured)})
    raw = [r for r in table if r["client"] == "raw"]
    other = [r for r in table if r["client"] == "aiohttp"]
    factors = [o["driver_cpu_ms_per_req"] / r["driver_cpu_ms_per_req"]
               for r, o in zip(raw, other) if r["driver_cpu_ms_per_req"]]
    conclusion = ("The raw-socket driver costs "
                  + " and ".join(f"{f:.1f}×" for f in factors)
                  + " less CPU per request than aiohttp's client here (non-stream, stream), so it "
                    "is the driver used for every figure above; it leaves the shared core to the "
                    "upstream.") if factors else ""
    return {"rows": table, "conclusion": conclusion}


async def paced_phase(bench: Bench, procs: ProcessSet) -> Json:
    config = bench.config
    log(f"paced: upstream sleeping {config.paced_delay_ms} ms before every frame")
    stack = start_stack(procs, bench.layout, "paced", config.paced_delay_ms, config.ready_timeout,
                        bench.mapper_extra)
    try:
        cells = [Scenario(d, True, c) for d in DIRECTIONS for c in config.paced_concurrencies]
        availability = await bench.check_targets(stack, [(d, True) for d in DIRECTIONS])
        runs = await bench.rounds(stack, cells, config.paced_rounds,
                                  lambda s: config.paced_requests[s.concurrency],
                                  availability, "paced")
    finally:
        stop_stack(procs, stack)
    return {"paced": {"scenarios": [s.key for s in cells], "availability": availability, "runs": runs,
            "note": f"The upstream sleeps {config.paced_delay_ms:g} ms before every frame (42 frames, "
                    "so a stream lasts about 42 × that plus timer slack); the time to first byte "
                    "therefore includes one sleep for every target."}}


async def memory_phase(bench: Bench, procs: ProcessSet) -> Json:
    """Per direction, a fresh stack, so that each proxy's baseline is its own warmed-up state."""
    config = bench.config
    log(f"memory: {config.memory_streams} concurrent streams, upstream frame every "
        f"{config.memory_delay_ms} ms")
    rows = []
    for direction in DIRECTIONS:
        stack = start_stack(procs, bench.layout, f"memory-{direction.key}", config.memory_delay_ms,
                            config.ready_timeout, bench.mapper_extra, directions=(direction,))
        try:
            for target in ("reference", "mapper"):
                rows.append(await _memory_row(bench, stack, direction, target))
        finally:
            stop_stack(procs, stack)
    seconds = 42 * config.memory_delay_ms / 1000
    return {"memory": {
        "rows": rows,
        "note": f"{config.memory_streams} streams sent at once through each proxy; the upstream "
                f"sleeps {config.memory_delay_ms:g} ms before every frame, so each stream lasts "
                f"about {seconds:.1f} s. Each direction gets fresh processes. Growth = peak VmRSS "
                "(sampled every 50 ms, the proxy's processes summed) minus VmRSS after a warm-up of "
                f"{config.memory_warmup} streams. *Peak open* counts streams that had started and "
                "not ended at one sample."}}


async def _memory_row(bench: Bench, stack: Stack, direction: Any, target: str) -> Json:
    config = bench.config
    row = {"direction": direction.key, "target": target}
    proxy = stack.proxy(target, direction)
    if proxy is None:
        return {**row, "unavailable": stack.missing.get(direction.key, "not started")}
    scenario = Scenario(direction, True, config.memory_streams)
    why = await bench.check_target(stack, scenario, target)
    if why:
        return {**row, "unavailable": why}
    path, body, _ = request_for(scenario, target)
    request = Request(stack.origin(target, direction) + path, body, True)
    measured = await rss_growth(proxy, request, config.memory_streams, config.memory_warmup,
                                config.memory_time_limit, config.grace, config.memory_settle)
    log(f"  {direction.key} {target}: RSS {measured['baseline_mib']:.1f} -> "
        f"{measured['peak_mib']:.1f} MiB, {measured['completed']}/{measured['streams']} streams, "
        f"peak open {measured['peak_open_streams']}")
    return {**row, **measured}


# -- metadata and output ---------------------------------------------------------------------------


def machine(layout: CoreLayout) -> Json:
    cpu = "unknown CPU"
    memory = "unknown memory"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    except OSError:
        pass
    versions = []
    for package in ("aiohttp", "uvloop", "orjson", "httpx", "prometheus_client"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    return {"cpu": cpu, "cpus": cpus, "memory": memory, "kernel": platform.release(),
            "python": platform.python_version(), "versions": ", ".join(versions),
            "layout": layout.note}


def source_state() -> Json:
    """The commit and the uncommitted files of the engine, to tell which code was measured."""
    import subprocess
    root = str(BENCH_DIR.parent)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                                capture_output=True, timeout=10).stdout.strip()
        # --no-optional-locks: read only, never refresh the index
        dirty = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--",
                                "engine", "mappings", "cli.py"], cwd=root, text=True,
                               capture_output=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": "unknown", "uncommitted": []}
    return {"commit": commit or "unknown", "uncommitted": sorted(line[3:] for line in dirty)}


def _install_signals() -> None:
    """Ctrl-C and SIGTERM both unwind through every ``finally``, which stops the servers."""
    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    # a shell starts background jobs with SIGINT ignored, and Python keeps it that way
    signal.signal(signal.SIGINT, signal.default_int_handler)


PHASES = (("proxy", proxy_phase), ("paced", paced_phase), ("memory", memory_phase),
          ("servers", lambda bench, procs: front.servers_phase(bench, procs, log)),
          ("workers", lambda bench, procs: front.workers_phase(bench, procs, log)),
          ("large", lambda bench, procs: front.large_phase(bench, procs, log)))


async def _servers(bench: Bench, procs: ProcessSet, skip: set[str], results: Json,
                   failures: list[str]) -> None:
    """Run the server phases; one that fails is recorded and the next one still runs."""
    for name, phase in PHASES:
        if name in skip:
            continue
        try:
            results.update(await phase(bench, procs))
        except Exception as error:  # noqa: BLE001 - recorded, reported, and the exit status says so
            failures.append(f"{name} phase: {type(error).__name__}: {error}")
            log(f"{name} phase failed:\n{traceback.format_exc()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="mapper's benchmark (issue 7).")
    parser.add_argument("--smoke", action="store_true", help="tiny counts, a few seconds (CI)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5; smoke 1)")
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw",
                        help="load driver client (default raw; see the driver check)")
    parser.add_argument("--mapper-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for `mapper serve`, repeatable, e.g. "
                             "--mapper-arg=--upstream-transport=httpx")
    parser.add_argument("--skip", action="append", default=[],
                        choices=("proxy", "paced", "memory", "servers", "workers", "large",
                                 "micro"), help="leave a part out")
    parser.add_argument("--out-dir", type=Path,
                        help="where results.json, logs/ and (unless --report) RESULTS.md go")
    parser.add_argument("--report", type=Path, help="the Markdown report (default "
                        "bench/RESULTS.md; with --smoke or --out-dir, <out-dir>/RESULTS.md)")
    args = parser.parse_args(argv)

    config = SMOKE if args.smoke else FULL
    if args.rounds:
        config = replace(config, rounds=args.rounds, paced_rounds=min(args.rounds, config.paced_rounds))
    out_dir = args.out_dir or (BENCH_DIR / "out" / ("smoke" if args.smoke else ""))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    json_path = out_dir / ("results.json" if args.smoke or args.out_dir else f"results-{stamp}.json")
    report_path = args.report or (out_dir / "RESULTS.md" if args.smoke or args.out_dir
                                  else BENCH_DIR / "RESULTS.md")
    out_dir.mkdir(parents=True, exist_ok=True)

    _install_signals()
    install_uvloop()
    layout = plan_cores()
    host = machine(layout)  # before pinning, which narrows what sched_getaffinity reports
    source = source_state()
    started = time.monotonic()
    bench = Bench(config, layout, args.client, tuple(args.mapper_arg))
    skip = set(args.skip)
    results: Json = {}
    failures: list[str] = []
    pin(0, layout.driver)  # this process is the load driver
    procs = ProcessSet(out_dir / "logs")
    try:
        with procs:
            asyncio.run(_servers(bench, procs, skip, results, failures))
    except KeyboardInterrupt:
        log("interrupted: every server has been stopped")
        return 130
    if "micro" not in skip:
        log("micro: engine against the hand-written converters")
        pin(0, layout.proxy or layout.driver)  # the servers are gone; use the quiet core
        try:
            results["micro"] = micro.run(config.micro_min_time, config.micro_repeat)
        except micro.MicroError as error:
            failures.append(f"micro benchmarks: {error}")
            log(str(error))

    command = "python -m bench.run" + ("".join(f" {a}" for a in argv) if argv is not None
                                       else "".join(f" {a}" for a in sys.argv[1:]))
    results["meta"] = {
        **host, "source": source, "source_after": source_state(), "smoke": config.smoke,
        "rounds": config.rounds, "client": args.client, "clock_ticks": os.sysconf("SC_CLK_TCK"),
        "mapper_args": list(args.mapper_arg),
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "command": command,
        "seconds": time.monotonic() - started,
        "requests_note": "requests per measurement (non-stream / stream): "
                         + ", ".join(f"c={c}: {config.json_requests[c]} / {config.stream_requests[c]}"
                                     for c in config.concurrencies)
                         + f"; each bounded to {config.time_limit:g} s (+{config.grace:g} s grace) "
                           "after a warm-up of max(2c, a tenth of that)",
    }
    results["directions"] = [{"key": d.key, "title": d.title} for d in DIRECTIONS]
    results["notes"] = bench.notes
    results["processes"] = procs.started
    results["failures"] = failures
    json_path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    report_path.write_text(report.render(results))
    log(f"wrote {report_path} and {json_path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
