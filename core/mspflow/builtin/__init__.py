"""The core's own groups and actions, registered through the same hooks as any plugin."""

from mspflow.builtin.transform import register_availability, register_modules

__all__ = ["register_availability", "register_modules"]
