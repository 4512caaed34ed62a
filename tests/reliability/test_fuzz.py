"""Fuzzed inputs for every registered action: 0 INTERNAL_ERROR, 0 escaped exceptions, 0 vendor requests
for refused input, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.reliability.conftest import Figures
from tests.reliability.hostile import Hostile
from tests.reliability.world import TENANTS, World


def test_fuzzed_inputs_for_every_action(world: World, figures: Figures, profile: dict[str, int]) -> None:
    app, h = world.app, Hostile(seed=20261129)
    actions = sorted({a.id for a in app.registry.actions.values()})
    seeds = world.seeds()
    codes: Counter[str] = Counter()
    escaped: list[str] = []
    leaks: list[str] = []
    for n in range(profile["fuzz"]):
        action_id = actions[n % len(actions)]
        base = h.r.choice(seeds.get(action_id) or [{}])
        call: dict[str, Any] = {"tenant": TENANTS[n % 2], "run_id": f"fuzz-{n}", "step_path": "s"}
        data = h.mutate(base)
        if n % 10 == 0:
            call |= h.envelope()
        before = world.requests()
        try:
            result = app.execute(action_id, input=data, **call)  # type: ignore[arg-type]
        except Exception as exc:
            escaped.append(f"{action_id}: {type(exc).__name__}: {str(exc)[:120]}")
            continue
        code = "OK" if result.ok else result.error.code  # type: ignore[union-attr]
        codes[code] += 1
        if code == "VALIDATION_ERROR" and world.requests() != before:
            leaks.append(f"{action_id} {data!r:.120}")
        if code == "INTERNAL_ERROR":
            escaped.append(f"{action_id}: INTERNAL_ERROR {result.error.message[:160]}")  # type: ignore[union-attr]
    total = sum(codes.values()) + len(escaped)
    ok = figures.record(
        f"fuzzed inputs ({app.db.dialect})",
        f"{total} calls over {len(actions)} actions: {codes['INTERNAL_ERROR']} INTERNAL_ERROR, "
        f"{len(escaped) - codes['INTERNAL_ERROR']} escaped, {len(leaks)} vendor requests for refused input "
        f"({codes['VALIDATION_ERROR']} refused)",
        not escaped and not leaks and total >= profile["fuzz"])
    assert ok, "\n".join((escaped + leaks)[:30])
