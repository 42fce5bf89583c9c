# ruff: noqa: T201  (a command-line tool: it prints)
"""Load generators: `wrk` (with bench/wrk/requests.lua) when on PATH, else a Python client.

Both replay a list of prepared requests against 127.0.0.1 over keep-alive connections for a
fixed time and report requests/s, latency percentiles, non-2xx responses and socket errors.

- mode "rotate": every connection cycles through the requests (auth headers, ids, bodies);
- mode "consume": each request is sent at most once (approving distinct loans);
- mode "edit" (Python only): each connection owns a few loans and edits them in turn, with
  If-Match set to the version from the loan's last ETag (so requests never conflict) and a
  principal other than the loan's current one (so every edit is a change).

The Python client runs in forked processes (two by default: the machine has two cores), each an
asyncio loop (uvloop when installed) over raw sockets with a minimal HTTP/1.1 parser, and times
every request itself. With `rate`, each connection sends at a fixed pace (a light probe).
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"  # the only address this harness ever sends load to
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "requests.lua"


@dataclass
class Req:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None

    def raw(self, port: int) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {HOST}:{port}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        body = (self.body or "").encode()
        if self.body is not None:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def wrk_path() -> str | None:
    return shutil.which("wrk")


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, math.ceil(pct / 100 * len(sorted_values)) - 1)]


def _summary(
    generator: str,
    seconds: float,
    lat_ms: list[float],
    non2xx: int,
    errors: int,
    statuses: dict[str, int] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    lat_ms.sort()
    n = len(lat_ms)
    pct = lambda p: round(percentile(lat_ms, p), 2) if n else None  # noqa: E731
    result = {
        "generator": generator,
        "requests": n,
        "seconds": round(seconds, 2),
        "rps": round(n / seconds, 1) if seconds else 0.0,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": round(lat_ms[-1], 2) if n else None,
        "non2xx": non2xx,
        "errors": errors,
    }
    if statuses is not None:
        result["statuses"] = statuses
    result.update(extra)
    return result


# --- wrk ---------------------------------------------------------------------------------------


def _lua_string(value: str) -> str:
    assert "]==]" not in value
    return f"[==[{value}]==]"


def write_lua_data(reqs: list[Req], path: Path) -> None:
    with path.open("w") as out:
        out.write("return {\n")
        for r in reqs:
            headers = ", ".join(
                f"[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in r.headers.items()
            )
            body = _lua_string(r.body) if r.body is not None else "nil"
            out.write(
                f"  {{{_lua_string(r.method)}, {_lua_string(r.path)}, {{{headers}}}, {body}}},\n"
            )
        out.write("}\n")


class WrkRun:
    """A running wrk (a child process); `result()` waits and parses its JSON line."""

    def __init__(
        self,
        port: int,
        reqs: list[Req],
        concurrency: int,
        duration: float,
        *,
        mode: str = "rotate",
        timeout: float = 10.0,
    ) -> None:
        threads = min(2, concurrency)
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-wrk-")
        data = Path(self.tmp.name) / "requests.lua"
        write_lua_data(reqs, data)
        cmd = [
            wrk_path() or "wrk",
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-d",
            f"{max(1, round(duration))}s",
            "--timeout",
            f"{max(1, round(timeout))}s",
            "-s",
            str(WRK_SCRIPT),
            f"http://{HOST}:{port}",
            "--",
            str(data),
            mode,
            str(threads),
        ]
        self.limit = duration + timeout + 30
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self) -> dict[str, Any]:
        try:
            stdout, stderr = self.proc.communicate(timeout=self.limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            stdout, stderr = self.proc.communicate()
        finally:
            self.tmp.cleanup()
        line = next((x for x in stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if self.proc.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({self.proc.returncode}): {stderr.strip()[-500:]}")
        w = json.loads(line.removeprefix("BENCH_JSON "))
        seconds = w["duration_us"] / 1e6
        errors = w["connect"] + w["read"] + w["write"] + w["timeout"]
        ms = lambda key: round(w[key] / 1000, 2) if w["requests"] else None  # noqa: E731
        return {
            "generator": "wrk",
            "requests": w["requests"],
            "seconds": round(seconds, 2),
            "rps": round(w["requests"] / seconds, 1) if seconds else 0.0,
            "p50_ms": ms("p50_us"),
            "p90_ms": ms("p90_us"),
            "p99_ms": ms("p99_us"),
            "max_ms": ms("max_us"),
            "non2xx": w["status"],  # wrk counts responses with status >= 400
            "errors": errors,
        }


# --- the Python client -------------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes | None, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked, etag, close = None, False, None, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"etag":
            etag = value.strip()
        elif name == b"connection":
            close = b"close" in value.lower()
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()
        close = True
    return status, etag, close


class _Conn:
    """One keep-alive connection with its own request source."""

    def __init__(self, spec: dict[str, Any], port: int) -> None:
        self.spec, self.port = spec, port
        self.index = spec.get("start", 0)
        # edit: [loan id, version, principal] of each loan this connection owns
        self.loans = [list(loan) for loan in spec.get("loans", ())]
        self.current: list[Any] = []

    def next_request(self, raws: list[bytes]) -> bytes | None:
        kind = self.spec["kind"]
        if kind == "edit":
            self.current = loan = self.loans[self.index % len(self.loans)]
            self.index += 1
            principal = next(p for p in self.spec["principals"] if p != loan[2])
            loan[2] = principal  # what it will be once this edit succeeds
            req = Req(
                "PATCH",
                f"/api/v1/agent/loans/{loan[0]}",
                {**self.spec["headers"], "If-Match": f'"{loan[1]}"'},
                json.dumps({"principal": principal}),
            )
            return req.raw(self.port)
        if self.index >= len(raws):
            if kind == "consume":
                return None
            self.index %= len(raws)
        raw = raws[self.index]
        self.index += self.spec.get("step", 1)
        return raw


async def _client(
    port: int,
    raws: list[bytes],
    specs: list[dict[str, Any]],
    start_at: float,
    end_at: float,
    timeout: float,
    rate: float | None,
) -> dict[str, Any]:
    lat = array("d")
    statuses: Counter[int] = Counter()
    errors = 0
    exhausted = False

    async def one(spec: dict[str, Any]) -> None:
        nonlocal errors, exhausted
        conn = _Conn(spec, port)
        reader, writer = await asyncio.open_connection(HOST, port)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        sent = 0
        while time.time() < end_at:
            raw = conn.next_request(raws)
            if raw is None:
                exhausted = True
                break
            began = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    writer.write(raw)
                    status, etag, close = await _read_response(reader)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
                continue
            lat.append((time.perf_counter() - began) * 1000)
            statuses[status] += 1
            if etag and spec["kind"] == "edit" and 200 <= status < 300:
                conn.current[1] = int(etag.strip(b'W/"'))
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
            sent += 1
            if rate:
                await asyncio.sleep(max(0.0, start_at + sent / rate - time.time()))
        writer.close()

    tasks = [asyncio.create_task(one(spec)) for spec in specs]
    await asyncio.sleep(max(0.0, end_at - time.time()))
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [
        o
        for o in outcomes
        if isinstance(o, BaseException) and not isinstance(o, asyncio.CancelledError)
    ]
    return {
        "lat": lat.tobytes(),
        "statuses": dict(statuses),
        "errors": errors + len(failed),
        "exhausted": exhausted,
        "failure": repr(failed[0]) if failed else None,
    }


def _child(pipe: Any, *args: Any) -> None:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    try:
        pipe.send(runner(_client(*args)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        pipe.send(
            {"lat": b"", "statuses": {}, "errors": 1, "exhausted": False, "failure": repr(exc)}
        )
    finally:
        pipe.close()


class PythonRun:
    """A running Python load (child processes); `result()` waits and merges their numbers."""

    def __init__(
        self,
        port: int,
        reqs: list[Req],
        concurrency: int,
        duration: float,
        *,
        mode: str = "rotate",
        timeout: float = 10.0,
        rate: float | None = None,
        edit: dict[str, Any] | None = None,
        processes: int = 2,
    ) -> None:
        raws = [r.raw(port) for r in reqs]
        specs = []
        for c in range(concurrency):
            if mode == "edit":
                specs.append(
                    {
                        "kind": "edit",
                        "loans": edit["loans"][c::concurrency],
                        "headers": edit["headers"],
                        "principals": edit["principals"],
                    }
                )
            elif mode == "consume":
                specs.append({"kind": "consume", "start": c, "step": concurrency})
            else:
                specs.append({"kind": "rotate", "start": (c * 7919) % max(1, len(raws))})
        self.duration = duration
        start_at = time.time() + 0.3 + 0.005 * concurrency  # connect, then start together
        end_at = start_at + duration
        ctx = multiprocessing.get_context("fork")
        self.children = []
        n = max(1, min(processes, concurrency))
        for p in range(n):
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_child,
                args=(child, port, raws, specs[p::n], start_at, end_at, timeout, rate),
                daemon=True,
            )
            proc.start()
            child.close()
            self.children.append((proc, parent))

    def result(self) -> dict[str, Any]:
        lat: list[float] = []
        statuses: Counter[int] = Counter()
        errors, exhausted, failures = 0, False, []
        try:
            for _proc, pipe in self.children:
                if not pipe.poll(self.duration + 120):
                    raise RuntimeError("a load generator process did not answer")
                out = pipe.recv()
                values = array("d")
                values.frombytes(out["lat"])
                lat.extend(values)
                statuses.update(out["statuses"])
                errors += out["errors"]
                exhausted = exhausted or out["exhausted"]
                if out["failure"]:
                    failures.append(out["failure"])
        finally:
            for proc, _ in self.children:
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
        non2xx = sum(n for s, n in statuses.items() if not 200 <= s < 300)
        extra: dict[str, Any] = {}
        if exhausted:
            extra["exhausted"] = True
        if failures:
            extra["failures"] = failures[:3]
        return _summary(
            "python",
            self.duration,
            lat,
            non2xx,
            errors,
            {str(k): v for k, v in sorted(statuses.items())},
            **extra,
        )


def run_python(
    port: int, reqs: list[Req], concurrency: int, duration: float, **kwargs: Any
) -> dict[str, Any]:
    return PythonRun(port, reqs, concurrency, duration, **kwargs).result()


def run(
    port: int,
    reqs: list[Req],
    concurrency: int,
    duration: float,
    *,
    generator: str = "auto",
    mode: str = "rotate",
    timeout: float = 10.0,
    **kwargs: Any,
) -> dict[str, Any]:
    """wrk when asked for (or `auto` and on PATH) and the mode allows it, else the Python client."""
    use_wrk = generator == "wrk" or (generator == "auto" and wrk_path() is not None)
    if use_wrk and mode in ("rotate", "consume") and not kwargs.get("rate"):
        return WrkRun(port, reqs, concurrency, duration, mode=mode, timeout=timeout).result()
    return run_python(port, reqs, concurrency, duration, mode=mode, timeout=timeout, **kwargs)


if __name__ == "__main__":  # a smoke test: python bench/load.py PORT PATH [CONCURRENCY]
    import sys

    port_arg, path_arg = int(sys.argv[1]), sys.argv[2]
    conc = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    for gen in ("python", "wrk") if wrk_path() else ("python",):
        print(gen, run(port_arg, [Req("GET", path_arg)], conc, 3, generator=gen))
    os._exit(0)
