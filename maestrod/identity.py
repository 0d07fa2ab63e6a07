"""Who is on the other end of a connection: the agent session whose process tree the peer belongs to.

maestrod starts every agent itself (a PTY child in its own terminal session, ``setsid``), so it knows each
agent's root process. A peer's pid (``SO_PEERCRED`` on the Unix socket, the owner of a TCP port for the web
front) is placed by walking ``/proc/<pid>/stat`` upwards: the peer belongs to session X if, on the way up
to init, a process is X's root (same pid *and* same start time) or is a member of the terminal session X's
root created (the ``session`` field, which survives re-parenting). A peer that reaches init without either
is outside every agent: a person.

Pids are reused, so every identification is of a ``(pid, start time)`` pair (field 22 of ``stat``, clock
ticks since boot): a recycled pid has a later start time and matches nothing it did not start as. The
results are cached per pair (a process's ancestry can only change by re-parenting to init, which never
makes it join a tree), in a bounded LRU.

Re-parenting: when an agent's shell exits before a background child (``(maestroctl ... &)``), the child is
re-parented to init and its ppid chain no longer reaches the agent; its terminal-session id still does, so
it is still that agent. A child of an agent that has exited is still identified as that (exited) agent
and refused (see :meth:`PeerIdentity.require_live`), never taken for the person. What escapes is a process
that both leaves the terminal session (``setsid``) and is orphaned (double fork): that is deliberate
evasion by code running as the user's uid, outside the threat model (docs/security.md).
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

from shared import errors

log = logging.getLogger("maestrod.identity")

#: Deeper than any real process tree; a longer chain (or a loop) is treated as "outside every agent".
MAX_DEPTH = 256
#: Cached (pid, start time) -> session answers.
CACHE_SIZE = 4096
#: Agent roots remembered after their session left the manager's memory (their leftovers stay refused).
ROOTS_KEPT = 4096
#: Where in ``Peer.extras`` the connection keeps its identity facts.
TREE_KEY = "identity.tree"
_CHECKED_KEY = "identity.checked"


class ProcessRoot(NamedTuple):
    """An agent session's first process (the PTY child the daemon started)."""

    session_id: str
    pid: int
    #: False once the daemon has reaped it (its pid may then be reused).
    running: bool


class ProcStat(NamedTuple):
    ppid: int
    session: int
    start: int


class _Root:
    __slots__ = ("session_id", "start", "ended")

    def __init__(self, session_id: str, start: int) -> None:
        self.session_id = session_id
        self.start = start
        #: Boot-clock ticks by which the root was seen reaped (None while it runs).
        self.ended: int | None = None


def read_stat(pid: int, proc: Path = Path("/proc")) -> ProcStat | None:
    """ppid, terminal-session id and start time of ``pid``; None if it is gone (or unreadable)."""
    try:
        with open(proc / str(pid) / "stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields start after the last ')'.
    rest = raw[raw.rfind(b")") + 2:].split()
    try:
        # rest[0] is field 3 (state): ppid is field 4, session field 6, starttime field 22.
        return ProcStat(int(rest[1]), int(rest[3]), int(rest[19]))
    except (IndexError, ValueError):
        return None


def _boot_ticks() -> int:
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


class PeerIdentity:
    """Maps a peer pid to the agent session whose process tree it belongs to.

    ``roots`` lists the sessions' root processes as the session manager knows them (live ones, and the
    exited ones it still remembers); ``session_status`` reads a session's stored status (None: no such
    session) for :meth:`require_live`.
    """

    def __init__(self, roots: Callable[[], Iterable[ProcessRoot]],
                 session_status: Callable[[str], str | None], *, proc: Path = Path("/proc")) -> None:
        self._list_roots = roots
        self._status = session_status
        self._proc = proc
        self._roots: OrderedDict[int, _Root] = OrderedDict()
        self._cache: OrderedDict[tuple[int, int], str | None] = OrderedDict()
        #: Bumped whenever a session exits: connections re-check their session only then.
        self._exits = 0

    # -- placing a pid ----------------------------------------------------------------------------

    def session_for_pid(self, pid: int) -> str | None:
        """The session (live or exited) whose process tree ``pid`` belongs to; None for a process outside
        every agent (a person) or one that is gone."""
        self._refresh_roots()
        st = read_stat(pid, self._proc)
        if st is None:
            return None
        walked: list[tuple[int, int]] = []
        cur, cur_st = pid, st
        found: str | None = None
        certain = True
        for _ in range(MAX_DEPTH):
            key = (cur, cur_st.start)
            if key in self._cache:
                self._cache.move_to_end(key)
                found = self._cache[key]
                break
            walked.append(key)
            found = self._match(cur, cur_st)
            if found is not None or cur_st.ppid <= 1:
                break
            parent = read_stat(cur_st.ppid, self._proc)
            if parent is None or parent.start > cur_st.start:
                # The parent went away (or its pid was reused) mid-walk: answer, but do not cache a guess.
                certain = False
                break
            cur, cur_st = cur_st.ppid, parent
        else:
            certain = False
        if certain:
            for key in walked:
                self._cache[key] = found
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return found

    def _match(self, pid: int, st: ProcStat) -> str | None:
        root = self._roots.get(pid)
        if root is not None and root.start == st.start:
            return root.session_id
        root = self._roots.get(st.session)
        if root is None or st.start < root.start:
            return None
        leader = read_stat(st.session, self._proc)
        if leader is not None:
            # The leader still exists: its pid was not reused only if it is the root we recorded.
            return root.session_id if leader.start == root.start else None
        # The root is gone; the pid of a terminal session stays allocated while any member lives, so a member
        # started before the root ended is the agent's leftover. One started later is in a newer session.
        if root.ended is None or st.start <= root.ended:
            return root.session_id
        return None

    def _refresh_roots(self) -> None:
        now: int | None = None
        for r in self._list_roots():
            known = self._roots.get(r.pid)
            if known is None or known.session_id != r.session_id:
                if not r.running:
                    continue  # reaped before we saw it: its pid cannot be vouched for
                st = read_stat(r.pid, self._proc)
                if st is None:
                    continue
                known = self._roots[r.pid] = _Root(r.session_id, st.start)
                self._roots.move_to_end(r.pid)
            if not r.running and known.ended is None:
                now = now if now is not None else _boot_ticks()
                known.ended = now
        while len(self._roots) > ROOTS_KEPT:
            self._roots.popitem(last=False)

    # -- connections ------------------------------------------------------------------------------

    def bind(self, extras: dict[str, Any], pid: int | None) -> str | None:
        """Place a new connection's peer (at connect time) and remember it in its ``extras``; the session
        it is (None: a person). Call once, before the connection's first request."""
        tree = self.session_for_pid(pid) if pid is not None else None
        extras[TREE_KEY] = tree
        if tree is not None:
            log.debug("peer pid %s is in session %s's process tree", pid, tree)
        return tree

    @staticmethod
    def tree_of(extras: dict[str, Any]) -> str | None:
        """The session whose process tree the connection's peer was in when it connected."""
        tree = extras.get(TREE_KEY)
        return tree if isinstance(tree, str) else None

    def check_token(self, extras: dict[str, Any], token_session: str | None) -> str | None:
        """An error message if a token may not be used on this connection: one naming another session
        than the peer's process tree (None: fine)."""
        tree = self.tree_of(extras)
        if tree is not None and token_session is not None and token_session != tree:
            return (f"the token names session {token_session}, but this process runs inside session {tree}'s "
                    "process tree: an agent acts only as itself")
        return None

    def on_event(self, event: dict[str, Any]) -> None:
        """Bus listener: a session's first status change records its root while it surely runs (a short-lived
        agent may exit before anything connects, its leftovers later); an exit makes every connection
        re-check its session."""
        if event["topic"] != "session.status":
            return
        self._refresh_roots()
        if event["data"].get("to") == "exited":
            self._exits += 1

    def require_live(self, session_id: str, extras: dict[str, Any]) -> None:
        """Refuse (FORBIDDEN) a request from a connection whose session has exited. Cheap: the store is
        read only when some session exited since this connection last looked."""
        if extras.get(_CHECKED_KEY) == self._exits:
            return
        status = self._status(session_id)
        if status is None or status == "exited":
            why = "was deleted" if status is None else "has exited"
            raise errors.RpcError(
                errors.FORBIDDEN,
                f"session {session_id} {why}: a connection acting as it (its token, or a process of its tree) "
                "may no longer act", {"session": session_id, "reason": "session_exited"})
        extras[_CHECKED_KEY] = self._exits
