"""Alert sinks: Telegram, webhook, console and the lake, behind one interface."""

from jobs.adapters.alert_sinks.base import DeliveryError, Sink

__all__ = ["DeliveryError", "Sink"]
