"""The mailbox: durable messages between sessions and the human, event-driven waits,
broadcast scopes, and the Stop-hook decision that wakes an idle agent for urgent mail.

* :mod:`maestrod.mail.store` -- MailStore (SQLite, migration 3);
* :mod:`maestrod.mail.scopes` -- ``all|my-workers|team`` to recipients;
* :mod:`maestrod.mail.wait` -- waiters woken by ``mail.received`` events;
* :mod:`maestrod.mail.wake` -- ``stop_hook_decision`` and its per-session cap;
* :mod:`maestrod.mail.nudge` -- a ``system`` prompt for an agent that is already idle;
* :mod:`maestrod.mail.service` -- ``Mail``, the service tying them together (``app.mail``), and
  ``install_hooks``, which plugs its Stop-hook wake-up into the session hooks.
"""

from maestrod.mail.config import MailConfig
from maestrod.mail.service import Mail, install_hooks
from maestrod.mail.wake import note_turn_start, stop_hook_decision

__all__ = ["Mail", "MailConfig", "install_hooks", "note_turn_start", "stop_hook_decision"]
