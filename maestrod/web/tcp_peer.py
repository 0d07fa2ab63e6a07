"""Which process is at the other end of a loopback TCP connection (Linux ``/proc``).

A Unix socket tells its peer's pid (``SO_PEERCRED``); TCP does not. On one machine both ends of a
loopback connection are in the same network namespace, so the client's end is a row of
``/proc/net/tcp`` (or ``tcp6``) whose *local* address is our peer's address and whose *remote* address
is ours: that row names the socket's inode and its owner's uid, and the process holding
``socket:[inode]`` among its ``/proc/PID/fd`` links is the peer.

The kernel answers the same question directly through netlink's sock_diag (an exact lookup by the
connection's addresses, microseconds where reading ``/proc/net/tcp`` takes milliseconds on a busy machine):
:func:`peer_process` asks it first and reads the tables only where it is not available. The encoding and
parsing are pure (:func:`parse_table`, :func:`find_socket`, :func:`diag_request`, :func:`diag_response`:
bytes in, rows out; tested on samples); :func:`peer_process` does the reading. Finding the pid still walks
every process's fds (milliseconds), so the web feed runs it in a worker thread, once per connection.
"""

from __future__ import annotations

import ipaddress
import os
import socket
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


# --- the kernel's own answer: sock_diag over netlink (Linux) --------------------------------------------
#
# An exact lookup by the connection's four-tuple: O(1) in the kernel, where /proc/net/tcp is generated
# from the whole table at every read (7 ms with a few hundred TIME_WAIT rows). Same answer: inode and uid.

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_NLMSG_HEADER = struct.Struct("=IHHII")
_NO_COOKIE = 0xFFFFFFFF


def diag_request(peer: Address, ours: Address, seq: int = 1) -> bytes:
    """A ``SOCK_DIAG_BY_FAMILY`` request for the peer's own socket (source = peer, destination = ours)."""
    peer_host = ipaddress.ip_address(canonical(peer)[0])
    ours_host = ipaddress.ip_address(canonical(ours)[0])
    if peer_host.version != ours_host.version:
        raise ValueError("the two ends of one connection have one address family")
    family = socket.AF_INET if peer_host.version == 4 else socket.AF_INET6
    sockid = (struct.pack("!HH", peer[1], ours[1]) + peer_host.packed.ljust(16, b"\0")
              + ours_host.packed.ljust(16, b"\0") + struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE))
    # inet_diag_req_v2: family, protocol, ext, pad, states (all), then the socket id.
    body = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    return _NLMSG_HEADER.pack(_NLMSG_HEADER.size + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, seq, 0) + body


def diag_response(data: bytes, peer: Address, ours: Address) -> SocketRow | None:
    """The socket an answer to :func:`diag_request` describes; None when the kernel knows no such socket."""
    if len(data) < _NLMSG_HEADER.size:
        return None
    _length, kind, _flags, _seq, _pid = _NLMSG_HEADER.unpack_from(data)
    if kind == _NLMSG_ERROR or len(data) < _NLMSG_HEADER.size + 72:
        return None
    # inet_diag_msg: family, state, timer, retrans, the 48-byte socket id, expires, rqueue, wqueue, uid, inode.
    _expires, _rqueue, _wqueue, uid, inode = struct.unpack_from("=IIIII", data, _NLMSG_HEADER.size + 4 + 48)
    if inode == 0:
        return None
    return SocketRow(local=canonical(peer), remote=canonical(ours), uid=uid, inode=inode)


def diag_lookup(peer: Address, ours: Address) -> SocketRow | None:
    """Ask the kernel (raises OSError where netlink's sock_diag is not available)."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)
        nl.sendto(diag_request(peer, ours), (0, 0))
        return diag_response(nl.recv(65536), peer, ours)


def pid_holding(inode: int, proc: Path = Path("/proc")) -> int | None:
    """The highest pid with an fd on ``socket:[inode]`` (a forked child may share its parent's socket; the
    youngest, usually the child that uses it, is taken -- pids wrap, so this is a heuristic, as is any
    answer about a shared socket). Pids are walked from the highest down and the walk stops at the first
    holder: every process's fds are read only when the peer is the oldest process on the machine."""
    target = f"socket:[{inode}]"
    try:
        pids = sorted((int(name) for name in os.listdir(proc) if name.isdigit()), reverse=True)
    except OSError:
        return None
    for pid in pids:
        fd_dir = os.path.join(proc, str(pid), "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or not ours to look at
            continue
        for fd in fds:
            try:
                if os.readlink(os.path.join(fd_dir, fd)) == target:
                    return pid
            except OSError:
                continue
    return None


def peer_process(peer: Address, ours: Address, proc: Path = Path("/proc")) -> PeerProcess | None:
    """The process at the other end of a loopback TCP connection, or None if it cannot be found."""
    row: SocketRow | None = None
    try:
        row = diag_lookup(peer, ours)
    except (OSError, ValueError):
        row = None  # no netlink here (or not allowed): read the tables
    for name in () if row is not None else ("tcp", "tcp6"):
        try:
            text = (proc / "net" / name).read_text()
        except OSError:
            continue
        row = find_in_text(text, peer, ours, v6=name == "tcp6")
        if row is not None:
            break
    if row is None:
        return None
    pid = pid_holding(row.inode, proc)
    return None if pid is None else PeerProcess(pid=pid, uid=row.uid)
