"""One module per command group. Each defines ``register(subparsers, name, help)``."""
