"""Which process is at the other end of a loopback TCP connection (Linux ``/proc``).

A Unix socket tells its peer's pid (``SO_PEERCRED``); TCP does not. On one machine both ends of a
loopback connection are in the same network namespace, so the client's end is a row of
``/proc/net/tcp`` (or ``tcp6``) whose *local* address is our peer's address and whose *remote* address
is ours: that row names the socket's inode and its owner's uid, and the process holding
``socket:[inode]`` among its ``/proc/PID/fd`` links is the peer.

The parsing is pure (:func:`parse_table`, :func:`find_socket`: text in, rows out; tested on sample
text); :func:`peer_process` does the reading. It is a few milliseconds of ``/proc`` walking, so the
web feed runs it in a worker thread, once per connection.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

#: A connection's end: (address, port) with the address in its canonical text form.
Address = tuple[str, int]


@attrs.frozen
class SocketRow:
    """One row of ``/proc/net/tcp{,6}``."""

    local: Address
    remote: Address
    uid: int
    inode: int


@attrs.frozen
class PeerProcess:
    pid: int
    uid: int


def _decode_host(hex_addr: str) -> str:
    """``0100007F`` -> ``127.0.0.1``; IPv6 is four 32-bit words, each in the kernel's byte order."""
    words = [int(hex_addr[i:i + 8], 16) for i in range(0, len(hex_addr), 8)]
    raw = b"".join(struct.pack("=I", w) for w in words)
    addr = ipaddress.ip_address(raw)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)  # ::ffff:127.0.0.1 is the same peer as 127.0.0.1
    return str(addr)


def _decode_endpoint(text: str) -> Address:
    host, _, port = text.partition(":")
    return _decode_host(host), int(port, 16)


def parse_table(text: str) -> Iterator[SocketRow]:
    """The rows of a ``/proc/net/tcp`` or ``/proc/net/tcp6`` text (header skipped, odd lines ignored)."""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            yield SocketRow(local=_decode_endpoint(fields[1]), remote=_decode_endpoint(fields[2]),
                            uid=int(fields[7]), inode=int(fields[9]))
        except ValueError:
            continue


def canonical(addr: Address) -> Address:
    host = ipaddress.ip_address(addr[0])
    if isinstance(host, ipaddress.IPv6Address) and host.ipv4_mapped is not None:
        host = host.ipv4_mapped
    return str(host), addr[1]


def find_socket(rows: Iterable[SocketRow], peer: Address, ours: Address) -> SocketRow | None:
    """The peer's own end of the connection ``ours`` <- ``peer``: local == peer, remote == ours.

    Inode 0 is a socket no process holds any more (closed, in TIME_WAIT): no answer rather than a wrong one.
    """
    peer, ours = canonical(peer), canonical(ours)
    for row in rows:
        if row.local == peer and row.remote == ours and row.inode != 0:
            return row
    return None


def encode_endpoint(addr: Address, *, v6: bool) -> str:
    """How ``/proc/net/tcp`` (``v6``: ``tcp6``) writes an endpoint: ``0100007F:1E35``."""
    host = ipaddress.ip_address(canonical(addr)[0])
    if v6 and isinstance(host, ipaddress.IPv4Address):
        host = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + host.packed)
    elif not v6 and isinstance(host, ipaddress.IPv6Address):
        raise ValueError("an IPv6 address has no row in /proc/net/tcp")
    raw = host.packed
    words = struct.unpack(f"={len(raw) // 4}I", raw)
    return "".join(f"{w:08X}" for w in words) + f":{addr[1]:04X}"


def find_in_text(text: str, peer: Address, ours: Address, *, v6: bool) -> SocketRow | None:
    """:func:`find_socket` without decoding every row: the two endpoints are encoded once and looked for
    as text (a busy machine has thousands of rows, mostly TIME_WAIT; decoding them all took ~10 ms)."""
    try:
        needle = f" {encode_endpoint(peer, v6=v6)} {encode_endpoint(ours, v6=v6)} "
    except ValueError:
        return None
    start = 0
    while (at := text.find(needle, start)) != -1:
        line_start = text.rfind("\n", 0, at) + 1
        line_end = text.find("\n", at)
        line = text[line_start:] if line_end == -1 else text[line_start:line_end]
        found = find_socket(parse_table("header\n" + line), peer, ours)
        if found is not None:
            return found
        start = at + 1
    return None


def pids_holding(inode: int, proc: Path = Path("/proc")) -> list[int]:
    """Every pid with an fd on ``socket:[inode]`` (a forked child may share its parent's), ascending."""
    target = f"socket:[{inode}]"
    found: list[int] = []
    try:
        entries = os.scandir(proc)
    except OSError:
        return found
    with entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            fd_dir = os.path.join(entry.path, "fd")
            try:
                fds = os.listdir(fd_dir)
            except OSError:  # gone, or not ours to look at
                continue
            for fd in fds:
                try:
                    if os.readlink(os.path.join(fd_dir, fd)) == target:
                        found.append(int(entry.name))
                        break
                except OSError:
                    continue
    return sorted(found)


def peer_process(peer: Address, ours: Address, proc: Path = Path("/proc")) -> PeerProcess | None:
    """The process at the other end of a loopback TCP connection, or None if it cannot be found.

    When several processes share the socket (fork), the youngest -- the highest pid, usually the child
    that uses it -- is taken; pids wrap, so this is a heuristic, as is any answer about a shared socket.
    """
    row: SocketRow | None = None
    for name in ("tcp", "tcp6"):
        try:
            text = (proc / "net" / name).read_text()
        except OSError:
            continue
        row = find_in_text(text, peer, ours, v6=name == "tcp6")
        if row is not None:
            break
    if row is None:
        return None
    pids = pids_holding(row.inode, proc)
    if not pids:
        return None
    return PeerProcess(pid=pids[-1], uid=row.uid)
