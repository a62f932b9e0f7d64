"""mapper's benchmark suite (issue 7): proxy overhead against a bare pass-through, and conversion cost.

Run it from the repository root with ``python -m bench.run`` (``--smoke`` for the seconds-long
mode CI runs). ``bench`` is not part of the ``mapper`` package and is never imported by it: it is
not listed in pyproject's ``packages``, so it does not ship in the wheel.

Modules, one job each:

    payloads.py              one realistic conversation, rendered in every API shape the bench sends
    reference_converters.py  the hand-written request and response converters (the yardstick)
    reference_stream.py      the hand-written stream converter
    upstream.py              a fast canned upstream (aiohttp + uvloop), chat and Responses
    passthrough.py           the reference pass-through proxy (aiohttp server + one ClientSession)
    load.py                  the load driver (raw asyncio sockets; an aiohttp client to compare)
    procs.py                 starting, pinning, watching and always stopping the processes
    targets.py               what is measured: directions, scenarios, and whether mapper is ready
    memory.py                RSS growth of a proxy holding 1,000 slow streams
    micro.py                 conversion micro benchmarks, engine against hand-written
    report.py                RESULTS.md from the raw figures
    run.py                   the one command that runs all of it
"""
