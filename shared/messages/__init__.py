"""Params and result types of every RPC method, one module per method group.

Each module lists its methods in ``METHODS``; :mod:`shared.methods` gathers
them into the catalogue that the daemon dispatches on and ``system.methods``
describes. No annotations are deferred here: cattrs reads the real types.
"""
