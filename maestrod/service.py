"""Operating-system integration: socket binding, peer credentials, single-instance lock,
systemd socket activation and sd_notify -- all without libsystemd."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import sys
from pathlib import Path

MAX_SOCKET_PATH = 104 if sys.platform == "darwin" else 108


class AlreadyRunning(RuntimeError):
    pass


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` 0700 or check an existing one is ours and not open to others."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.getuid():
        raise PermissionError(f"{path} belongs to uid {st.st_uid}, not to us ({os.getuid()})")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def acquire_lock(path: Path) -> int:
    """An flock held for the process lifetime; a second daemon fails here, race-free."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunning(f"another maestrod holds {path}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def bind_unix(path: Path, backlog: int = 128) -> socket.socket:
    """Bind a 0600 Unix socket. Call while holding the lock: any file already there is stale."""
    if len(os.fsencode(path)) >= MAX_SOCKET_PATH:
        raise OSError(errno.ENAMETOOLONG, f"socket path too long (max {MAX_SOCKET_PATH - 1} bytes)", str(path))
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)  # the inode is born 0600; no window where others could connect
    try:
        sock.bind(os.fspath(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(backlog)
    return sock


#: LISTEN_FDNAMES prefix of a session's PTY master in systemd's file descriptor store.
PTY_FDNAME_PREFIX = "pty."


def systemd_listen_fds() -> tuple[list[socket.socket], dict[str, int]]:
    """What systemd passed us (``LISTEN_FDS``, if meant for us): the listening sockets, and the PTY
    masters its file descriptor store kept for us (``FDSTORE=1``), by their ``FDNAME``."""
    try:
        if int(os.environ.get("LISTEN_PID", "0")) != os.getpid():
            return [], {}
        count = int(os.environ.get("LISTEN_FDS", "0"))
        names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    except ValueError:
        return [], {}
    finally:
        for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(key, None)  # children (agents) must not think the fds are theirs
    socks: list[socket.socket] = []
    stored: dict[str, int] = {}
    for i, fd in enumerate(range(3, 3 + count)):  # SD_LISTEN_FDS_START
        os.set_inheritable(fd, False)
        name = names[i] if i < len(names) else ""
        if name.startswith(PTY_FDNAME_PREFIX):
            stored[name] = fd
        else:
            socks.append(socket.socket(fileno=fd))
    return socks, stored


def systemd_listen_sockets() -> list[socket.socket]:
    """Sockets passed by systemd socket activation (``LISTEN_FDS``), if they are meant for us."""
    return systemd_listen_fds()[0]


def sd_notify(state: str, fds: list[int] | None = None) -> bool:
    """Send one sd_notify datagram ("READY=1", "STOPPING=1", "STATUS=...", "FDSTORE=1" with ``fds`` passed
    as SCM_RIGHTS); False without systemd (or when it could not be sent)."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr[0] == "@":
        addr = "\0" + addr[1:]
    try:
        # Non-blocking: a supervisor that does not read its socket (its queue full) must never stall the
        # daemon; the datagram is then dropped (False).
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as s:
            s.connect(addr)
            if fds:
                socket.send_fds(s, [state.encode()], fds)
            else:
                s.sendall(state.encode())
    except OSError:
        return False
    return True


def proc_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22), None if it is gone,
    a zombie, or there is no /proc: a pid and this name one process, even after the pid is reused."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    fields = raw[raw.rindex(b")") + 2:].split()
    if fields[:1] in ([b"Z"], [b"X"]):
        return None  # exited (a zombie nobody reaped yet): nothing to adopt or to wait for
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket."""
    if hasattr(socket, "SO_PEERCRED"):
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
        return pid, uid, gid
    import ctypes  # macOS / BSD: getpeereid(3)
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    uid_c, gid_c = ctypes.c_uint32(), ctypes.c_uint32()
    if libc.getpeereid(sock.fileno(), ctypes.byref(uid_c), ctypes.byref(gid_c)):
        raise OSError(ctypes.get_errno(), "getpeereid failed")
    return -1, uid_c.value, gid_c.value
