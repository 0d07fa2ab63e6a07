"""maestrod: the per-user daemon that owns agents' terminals and serves JSON-RPC on a Unix socket."""
