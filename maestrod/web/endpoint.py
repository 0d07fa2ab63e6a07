"""Where the web feed listens and its token, once it is up (``App.web``; None while it is off)."""

from __future__ import annotations

import attrs


@attrs.frozen
class WebEndpoint:
    port: int
    #: The secret every WebSocket connection presents (``?token=``); never logged, never in ``url``.
    token: str = attrs.field(repr=False)

    @property
    def url(self) -> str:
        """The dashboard's address, without the token."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def rpc_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rpc"

    @property
    def dashboard_url(self) -> str:
        """The dashboard with the token in the fragment (never sent to the server, never in a Referer)."""
        return f"{self.url}#token={self.token}"
