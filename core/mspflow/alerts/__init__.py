"""RMM alerts as the PSA keeps them: what plugins record and read (``ctx.alerts``).

The provider-generic alert pipeline (normalized events, rules, maintenance windows, lifecycle,
polling) grows here too.
"""

from mspflow.alerts.store import AlertStore, StoredAlert

__all__ = ["AlertStore", "StoredAlert"]
