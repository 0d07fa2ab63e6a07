"""``maestroctl shell``: an interactive prompt_toolkit shell on asyncio (see docs/shell.md).

Nothing here is imported by any other maestroctl command: prompt_toolkit costs ~100 ms to import,
more than a whole ordinary maestroctl call.

Rooms: :mod:`.rpc` (JSON-RPC over an asyncio Unix stream), :mod:`.live` (what the toolbar and the
completer know, a pure state machine fed events), :mod:`.feed` (the event connection: snapshot,
subscribe, replay after a reconnect), :mod:`.complete` (commands and flags from the real parser, live
ids from :mod:`.live`), :mod:`.runner` (a command line run in a child maestroctl, off the event loop),
:mod:`.app` (the prompt, the toolbar, attach and the prompt editor).
"""
