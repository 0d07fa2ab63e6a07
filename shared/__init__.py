"""Code both maestrod and maestroctl import: sans-I/O, no sockets, no trio, no files opened.

Modules here must stay cheap to import: `maestroctl` imports `shared.paths` and
`shared.errors` on every invocation.
"""

__version__ = "0.1.0"
#: Bumped whenever a method's params or results change incompatibly.
PROTOCOL_VERSION = 1
