"""Notifications: tell the person when a session needs them (``[notify]``; docs/notifications.md).

``core`` decides (pure), ``runner`` runs the command; ``config`` is the ``[notify]`` section."""

from maestrod.notify.config import NotifyConfig
from maestrod.notify.core import Notification, NotifyDecider
from maestrod.notify.runner import Notifier

__all__ = ["NotifyConfig", "Notification", "NotifyDecider", "Notifier"]
