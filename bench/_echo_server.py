"""The floor for bench_rpc: a bare NDJSON echo server on a Unix socket, in trio like maestrod.

It answers each line with a JSON-RPC result carrying the request id, doing the least work a
server can do per line (find the newline, find the id, write).
"""

from __future__ import annotations

import os
import socket
import sys

import trio


async def handle(stream: trio.SocketStream) -> None:
    buf = b""
    try:
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                await stream.send_all(line + b"\n")
    except trio.BrokenResourceError:
        return


async def main(path: str) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    s.bind(path)
    s.listen(16)
    print("ready", flush=True)
    await trio.serve_listeners(handle, [trio.SocketListener(trio.socket.from_stdlib_socket(s))])


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
