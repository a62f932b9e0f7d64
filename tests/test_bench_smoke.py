"""The benchmark still works: ``python -m bench.run --smoke`` in a subprocess, bounded in time.

Benchmarks are not timed tests. This asserts that the bench starts its servers, measures every
target that is available, checks the engine against the hand-written converters, stops every
process it started and writes a report; it never asserts how fast anything is. The smoke mode takes
about 20 s on a 2-core machine; the timeout only stops a hung run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120.0  # seconds: a hang guard (about 20 s on a quiet 2-core machine, 50 s on a loaded one)


def _run_smoke(out_dir: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "bench.run", "--smoke", "--out-dir", str(out_dir)]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as bench:
        try:
            output, _ = bench.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            bench.send_signal(signal.SIGTERM)  # the bench stops its servers on SIGTERM
            try:
                output, _ = bench.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                bench.kill()
                output, _ = bench.communicate()
            raise AssertionError(f"the smoke bench did not finish in {TIMEOUT:.0f} s:\n{output}")
    return subprocess.CompletedProcess(command, bench.returncode, output)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def test_smoke_bench_runs_and_writes_a_report(tmp_path: Path) -> None:
    run = _run_smoke(tmp_path)
    assert run.returncode == 0, run.stdout

    report = (tmp_path / "RESULTS.md").read_text()
    assert report.startswith("# mapper benchmark results")
    for section in ("## Against the targets", "## Proxy overhead", "## Paced streams",
                    "## Memory", "## HTTP servers", "## Workers", "## Large streams",
                    "## Conversion cost"):
        assert section in report

    results = orjson.loads((tmp_path / "results.json").read_bytes())
    measured = {(run["scenario"], run["target"]) for run in results["proxy"]["runs"]}
    for target in ("direct", "reference"):
        assert ("responses-to-chat/json/c8", target) in measured
        assert ("responses-to-chat/stream/c8", target) in measured
    assert all(run["completed"] > 0 for run in results["proxy"]["runs"])
    assert all(run["completed"] > 0 for run in results["servers"]["runs"] + results["workers"]["runs"])
    assert all(row["status"] == 200 and row["bytes"] > 0 for row in results["large"]["rows"])
    conversions = [row for row in results["micro"]["rows"] if row.get("reference_us")]
    assert conversions and all(row["outputs_match"] for row in conversions if "engine_us" in row)

    assert results["processes"], "the bench started no server"
    left = [proc for proc in results["processes"] if _alive(proc["pid"])]
    assert not left, f"the bench left processes running: {left}"
