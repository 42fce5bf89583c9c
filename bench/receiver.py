"""A webhook receiver for the benchmark: answers every POST 204 at once and notes when each
event id arrived (wall clock), written as JSON lines to the file named on the command line when
the process is stopped (SIGTERM). A bare asyncio protocol on uvloop, so that it costs the shared
CPU little (it shares the two cores with the API it measures).

    python bench/receiver.py PORT OUT.jsonl
"""

import asyncio
import json
import signal
import sys
import time

import uvloop

ANSWER = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


class Receiver(asyncio.Protocol):
    arrivals: list[tuple[str, float, str]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()  # one pass in C, then plain finds
            length = int(_field(head, b"content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            path = head[: head.find(b"\r\n")].split(b" ")[1].decode()
            event_id = (_field(head, b"webhook-id") or b"").decode()
            Receiver.arrivals.append((event_id, time.time(), path))
            self.transport.write(ANSWER)  # type: ignore[attr-defined]


def _field(head: bytes, name: bytes) -> bytes | None:
    """A header's value in a lower-cased request head, or None."""
    start = head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


async def main(port: int, out: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Receiver, "127.0.0.1", port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("ready", flush=True)  # noqa: T201
    await stop.wait()
    server.close()
    with open(out, "w") as f:
        for event_id, at, path in Receiver.arrivals:
            f.write(json.dumps({"id": event_id, "at": at, "path": path}) + "\n")


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), sys.argv[2]))
