"""Hostile values: what an attacker or a broken host sends instead of a workflow step's input."""

from __future__ import annotations

import random
from typing import Any

STRINGS = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "../../etc/passwd", "..", ".", "%2F%2e%2e", "?#", "\r\nX-Evil: 1",
    "💥" * 50, "\u202eevil", "'; DROP TABLE assets; --", "<script>alert(1)</script>", "javascript:alert(1)",
    "https://[::1", "9" * 400, "-1", "1e400", "NaN", "null", "true", "{}", "[]", "2026-13-45T99:99:99",
    "0001-01-01T00:00:00", "9999-12-31T23:59:59", "\\", '"', "\t\n", "A" * 5000,
]
NUMBERS: list[Any] = [0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**100, 0.5, -0.0, 1e308, float("inf"),
                      float("-inf"), float("nan"), True, False]


def deep(depth: int) -> Any:
    """``{"a": {"a": ...}}`` nested ``depth`` levels, built without recursion."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


class Hostile:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def scalar(self) -> Any:
        pick = self.r.random()
        if pick < 0.5:
            return self.r.choice(STRINGS)
        if pick < 0.85:
            return self.r.choice(NUMBERS)
        return None

    def value(self, budget: int = 3) -> Any:
        pick = self.r.random()
        if budget <= 0 or pick < 0.6:
            return self.scalar()
        if pick < 0.8:
            return [self.value(budget - 1) for _ in range(self.r.randint(0, 4))]
        if pick < 0.97:
            return {self.r.choice(["id", "device_id", "x", "", "\x00", "__proto__"]): self.value(budget - 1)
                    for _ in range(self.r.randint(0, 3))}
        return self.r.choice([deep(400), deep_list(400), deep(5000)])

    def mutate(self, seed: dict[str, Any]) -> Any:
        """A known-good input with one to three fields broken, dropped or added — or not an object at all."""
        pick = self.r.random()
        if pick < 0.05:
            return self.r.choice([None, [], "input", 7, [seed]])
        data = dict(seed)
        for _ in range(self.r.randint(1, 3)):
            op = self.r.random()
            keys = list(data)
            if keys and op < 0.6:
                data[self.r.choice(keys)] = self.value()
            elif keys and op < 0.8:
                del data[self.r.choice(keys)]
            else:
                data[self.r.choice(["extra", "unknown_field", "\x00", "limit", "live"])] = self.value()
        return data

    def envelope(self) -> dict[str, Any]:
        """Hostile call envelopes: tenant, run id, step path, idempotency key."""
        field = self.r.choice(["tenant", "run_id", "step_path", "idempotency_key"])
        bad = self.r.choice(["x" * 256, "y" * 1025, "a\x00", "\ud800", "", " ", "t/../u", "z" * 100_000])
        return {field: bad}
