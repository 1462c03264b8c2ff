"""Alert sinks: Telegram, webhook, console and the lake, behind one interface."""

from jobs.alerts.sinks.base import DeliveryError, Sink

__all__ = ["DeliveryError", "Sink"]
