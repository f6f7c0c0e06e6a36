"""Exceptions that otel-agents raises into application code on purpose.

Only decisions reach the application (a denied tool call in enforce mode, say); internal
errors never do. Agent frameworks surface these to the model as tool errors.
"""

from __future__ import annotations


class OtelAgentsError(Exception):
    """Base of every exception otel-agents raises on purpose."""


class Intervention(OtelAgentsError):
    """A deliberate stop of an action (policy deny, rejected approval, ...).

    Raised by observers before a tool runs; the tool span records it and the exception
    reaches the caller unchanged.
    """
