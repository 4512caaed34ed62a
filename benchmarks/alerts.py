"""Alert pipeline benchmark: events per second from the journal to the ticket decision with 50 rules on
PostgreSQL, as a ratio to processing the same journaled deliveries with a receiver that does nothing; and
rule-evaluation time per event as the rule count grows (10 / 100 / 1,000 rules).

**Throughput.** A throwaway PostgreSQL (``synchronous_commit=off``, or ``MSPFLOW_BENCH_POSTGRESQL_URL``)
holds 50 rules for the tenant: 49 that do not match (severities, keywords, source types, one in ten with a
message regex) and a catch-all last that creates tickets through the reference PSA's ``tickets.*``.
EVENTS Tactical RMM alert webhooks (each a new alert; one in two re-fires an earlier condition and joins
its open ticket) are journaled, then processed one after another by :class:`mspflow.inbound.processing.Processor`
(normalize, upsert, windows, rules, ``tickets.create``/``link_entities``/``add_comment`` through the
runtime, outbox). The baseline journals as many deliveries for a receiver whose parse returns nothing
and processes them the same way (claim, parse, finish). Rounds alternate; medians over ROUNDS rounds.

**Rule evaluation.** :func:`mspflow.alerts.rules.first_match` over N rules of the same mix, none matching
until the last, per event, in microseconds; then loading the tenant's active rules from the database and
evaluating them (what the pipeline does per event). Prints; asserts nothing.
Run with ``./dev bench`` or ``python benchmarks/alerts.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROUNDS = 3
EVENTS = 150
TENANT = "bench-tenant"
RULE_COUNTS = (10, 100, 1000)


def rule_specs(count: int) -> list[dict[str, Any]]:
    """``count`` rules that do not match the benchmark's alerts, then a catch-all that makes tickets."""
    specs = []
    for i in range(count - 1):
        kind = i % 4
        conditions: dict[str, Any] = (
            {"severities": ["info"], "keywords": [f"service-{i}"]} if kind == 0 else
            {"source_types": [f"CONDITION_{i}"]} if kind == 1 else
            {"keywords": [f"printer-{i}", f"toner-{i}"]} if kind == 2 else
            {"organizations": [f"org-{i}"], "severities": ["warning"]})
        if i % 10 == 0:
            conditions = {"keywords": [f"ups-{i}"], "message_regex": rf"battery \d+% (low|critical) {i}"}
        specs.append({"name": f"rule {i}", "priority": i, "conditions": conditions,
                      "actions": {"create_ticket": {"board": f"Board {i}"}}})
    specs.append({"name": "catch-all", "priority": 100_000, "conditions": {},
                  "actions": {"create_ticket": {"board": "Alerts", "severity_priority": {"error": "P1"}},
                              "auto_resolve_ticket": True}})
    return specs


def evaluation(db_url: str | None) -> None:
    from mspflow.alerts.events import AlertEvent
    from mspflow.alerts.rules import Rule, active_rules, add_rule, first_match
    from mspflow.db.engine import Database
    from mspflow.db.migrate import upgrade
    from mspflow.db.models import AlertRule

    event = AlertEvent(kind="triggered", tenant=TENANT, provider="tacticalrmm", external_alert_id="1",
                       severity="error", source_type="check", organization="Contoso",
                       message="Disk space C: 3% free on FS-01 " + "x" * 200, title="Disk space C:")
    print("rule evaluation per event (none matches until the last rule):")
    base: float | None = None
    for count in RULE_COUNTS:
        rules = [Rule.of(AlertRule(rule_id=str(i), tenant=TENANT, name=s["name"], priority=s["priority"],
                                   is_active=True, conditions=s["conditions"], actions=s["actions"]))
                 for i, s in enumerate(rule_specs(count))]
        loops = max(20, 20_000 // count)
        samples = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            for _ in range(loops):
                assert first_match(rules, event) is rules[-1]
            samples.append((time.perf_counter() - started) / loops * 1e6)
        each = statistics.median(samples)
        base = base or each
        line = f"  {count:>5} rules: evaluate {each:9.1f} µs/event ({each / base:6.1f}x 10 rules)"
        if db_url is not None:
            db = Database(db_url)
            upgrade(db)
            with db.session(write=True) as s:
                s.query(AlertRule).filter(AlertRule.tenant == TENANT).delete()
                for spec in rule_specs(count):
                    add_rule(s, TENANT, **spec)
            loads = max(5, 2_000 // count)
            started = time.perf_counter()
            for _ in range(loads):
                with db.sessions() as s:
                    assert first_match(active_rules(s, TENANT), event) is not None
            line += f"; load from the database + evaluate {(time.perf_counter() - started) / loads * 1e6:10.1f} µs"
            db.dispose()
        print(line)


def throughput(db_url: str) -> None:
    from mspflow_tacticalrmm.sim import FILESERVER_ID, TacticalRMMSimulator
    from sqlalchemy import text

    from mspflow import Receiver, hookimpl, webhook
    from mspflow.alerts.rules import add_rule
    from mspflow.app import App
    from mspflow.db.engine import Database
    from mspflow.db.migrate import upgrade
    from mspflow.inbound.journal import insert_once, new_row
    from mspflow.inbound.processing import Processor
    from mspflow.plugins import Plugins

    class Noop:
        @hookimpl
        def register_receivers(self, register: Any) -> None:
            register(Receiver("noop", verify=webhook.shared_secret("X-Noop"), parse=lambda delivery: []))

    db = Database(db_url)
    upgrade(db)
    app = App(db=db, plugins=Plugins(extra=[("bench-noop", Noop())], strict=True))
    with db.session(write=True) as s:
        for spec in rule_specs(50):
            add_rule(s, TENANT, **spec)
    sim = TacticalRMMSimulator()
    counter = iter(range(10**9))

    def journal(provider: str, n: int) -> list[str]:
        rows = []
        for _ in range(n):
            k = next(counter)
            if provider == "noop":
                payload: Any = {"k": k}
            else:
                alert = sim.add_alert(FILESERVER_ID, message=f"Disk C: {k % 7}% free", check_id=k // 2)
                payload = json.loads(sim.webhook(alert))
            rows.append(new_row(tenant=TENANT, provider=provider, connection_id=None, delivery_id=f"{provider}-{k}",
                                payload=payload, headers={}, content_type="application/json",
                                received_at=datetime.now(UTC)))
        with db.engine.begin() as conn:
            for row in rows:
                conn.execute(insert_once(db.dialect), row)
        return [r["event_id"] for r in rows]

    processor = Processor(app)
    rates: dict[str, list[float]] = {"noop": [], "tacticalrmm": []}
    for _ in range(ROUNDS):
        for provider in ("noop", "tacticalrmm"):
            ids = journal(provider, EVENTS)
            started = time.perf_counter()
            for event_id in ids:
                outcome = processor.process(event_id)
                assert outcome.status == "PROCESSED", outcome
            rates[provider].append(EVENTS / (time.perf_counter() - started))
    with db.engine.connect() as conn:
        tickets = conn.execute(text("SELECT count(*) FROM tickets WHERE tenant = :t"), {"t": TENANT}).scalar_one()
    app.close()
    db.dispose()
    alerts, bare = statistics.median(rates["tacticalrmm"]), statistics.median(rates["noop"])
    print(f"journal → ticket decision, 50 rules, PostgreSQL, one worker thread: {alerts:7.1f} events/s "
          f"(bare journal processing {bare:7.1f}/s: ratio {alerts / bare:.3f}); "
          f"{tickets} tickets for {ROUNDS * EVENTS} alerts (half joined an open ticket)")


def main() -> None:
    os.environ.setdefault("MSPFLOW_LOAD_PLUGINS", "psa,tacticalrmm")
    from cryptography.fernet import Fernet

    os.environ.setdefault("MSPFLOW_SECRET_KEY", Fernet.generate_key().decode())
    from _servers import postgresql

    with postgresql() as pg:
        print(f"alerts benchmark on {pg.note}")
        throughput(pg.url)
        evaluation(pg.url)


if __name__ == "__main__":
    main()
