"""A CSV download of 100,000 loans from a real `loanapi serve` process, in constant memory.

The loans are inserted straight into PostgreSQL (one INSERT ... SELECT over generate_series).
The client reads the download slowly, so a server that buffered the body instead of waiting for
the socket would show it; the server process's resident memory is sampled all along (psutil if
installed, else /proc/<pid>/status) and its peak must stay within BOUND of what it was before,
after a small download has warmed the same code path (statements compiled, read pool open).
"""

import asyncio
import csv
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.process.conftest import (
    ADMIN,
    API,
    Server,
    ServerFactory,
    client_for,
    login,
    new_customer,
    report,
)

pytestmark = pytest.mark.process

ROWS = 100_000
WARM_UP_ROWS = 2_500
BOUND = 30 * 1024 * 1024
TEST_TIMEOUT = 300

try:
    import psutil

    def rss(pid: int) -> int:
        return int(psutil.Process(pid).memory_info().rss)

except ImportError:

    def rss(pid: int) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no VmRSS for process {pid}")


class Sampler:
    """The peak RSS of a process, sampled every few milliseconds in a thread."""

    def __init__(self, pid: int, every: float = 0.005) -> None:
        self.pid, self.every = pid, every
        self.peak = self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss(self.pid))
            self.samples += 1
            time.sleep(self.every)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss(self.pid))


INSERT_LOANS = """
INSERT INTO loans (customer_id, loan_type, principal, annual_rate, tenure_months, emi,
                   total_payable, total_interest, status, version, created_at, updated_at)
SELECT $1, (ARRAY['home_loan', 'car_loan', 'personal_loan', 'education_loan'])[g % 4 + 1],
       10000.00 + g % 1000, 6.90, 12, 864.81, 10377.67, 377.67, 'new', 1,
       $2::timestamptz - g * interval '1 millisecond',
       $2::timestamptz - g * interval '1 millisecond'
FROM generate_series(1, $3::int) AS g
"""


async def download(
    client, admin, query: str, on_line: Callable[[list[str]], None], pause: float = 0
) -> tuple[list[str], int]:
    """Stream `/admin/loans?format=csv&<query>`, reading `pause` seconds slower per piece."""
    url = f"{API}/admin/loans?format=csv{query}"
    header: list[str] = []
    rows = 0
    async with client.stream("GET", url, headers=admin.headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert "content-length" not in response.headers  # streamed, not built whole
        pending = ""
        async for text in response.aiter_text():
            pending += text
            lines = pending.split("\r\n")
            pending = lines.pop()
            for values in csv.reader(lines):
                if not header:
                    header = values
                    continue
                on_line(values)
                rows += 1
            if pause:
                await asyncio.sleep(pause)
        assert pending == ""  # the body ends with its last row's CRLF
    return header, rows


@pytest.fixture(scope="module")
def server(start_server: ServerFactory) -> Server:
    return start_server("exports", migrate=True)


async def test_a_100k_row_download_streams_in_constant_memory(server, pg_database):
    await asyncio.wait_for(_download_100k(server, pg_database), TEST_TIMEOUT)


async def _download_100k(server: Server, pg_database) -> None:
    async with client_for(server.base_url, connections=4, timeout=120) as client:
        admin = await login(client, ADMIN["username"], ADMIN["password"])
        customer = await new_customer(client, "bulk")
        anchor = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        connection = await pg_database.connect()
        try:
            began = time.monotonic()
            await connection.execute(INSERT_LOANS, customer.id, anchor, ROWS)
            await connection.execute("ANALYZE loans")
            inserted = time.monotonic() - began
        finally:
            await connection.close()

        # Warm-up: the newest 2,500 loans (created within 2.5 s before the anchor), 3 chunks.
        newest = (anchor - timedelta(milliseconds=WARM_UP_ROWS)).isoformat().replace("+", "%2B")
        _, warm = await download(client, admin, f"&created_from={newest}", lambda _: None)
        assert warm == WARM_UP_ROWS
        before = rss(server.pid)

        ids: set[int] = set()
        last: list[datetime] = []

        def check(values: list[str]) -> None:
            created_at = datetime.fromisoformat(values[12])
            assert not last or created_at <= last[0], "not newest first"
            last[:] = [created_at]
            ids.add(int(values[0]))

        began = time.monotonic()
        with Sampler(server.pid) as sampler:
            header, rows = await download(client, admin, "", check, pause=0.001)
        seconds = time.monotonic() - began

    assert header[:4] == ["id", "customer_id", "agent_id", "loan_type"]
    assert rows == ROWS
    assert len(ids) == ROWS  # none twice
    growth = sampler.peak - before
    report(
        f"CSV download: {ROWS:,} loans (inserted in {inserted:.1f} s) streamed in {seconds:.1f} s "
        f"({ROWS / seconds:,.0f} rows/s, client reading slowly); server RSS "
        f"{before / 2**20:.1f} MiB before, peak {sampler.peak / 2**20:.1f} MiB "
        f"(+{growth / 2**20:.1f} MiB, {sampler.samples} samples)"
    )
    assert growth <= BOUND, f"RSS grew by {growth / 2**20:.1f} MiB during the download"
