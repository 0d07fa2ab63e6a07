"""The durable store: one SQLite file, used from the Trio thread (writes take ~10 µs)."""
