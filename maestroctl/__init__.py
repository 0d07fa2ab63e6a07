"""maestroctl: the thin client. Imports only the standard library on its hot path."""
