"""A webhook receiver for the benchmark: answers every POST 204 at once and notes when each
event id arrived (wall clock), written as JSON lines to the file named on the command line when
the process is stopped (SIGTERM). Plain asyncio, so that it costs the shared CPU little.

    python bench/receiver.py PORT OUT.jsonl
"""

import asyncio
import json
import signal
import sys
import time

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
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            fields = (line.partition(":") for line in head[1:])
            headers = {k.strip().lower(): v.strip() for k, _, v in fields}
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            path = head[0].split(" ")[1] if " " in head[0] else ""
            Receiver.arrivals.append((headers.get("webhook-id", ""), time.time(), path))
            self.transport.write(ANSWER)  # type: ignore[attr-defined]


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
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
