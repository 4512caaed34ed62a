"""The alert-source hook, alert rules (validation, evaluation) and maintenance windows, without HTTP."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mspflow import AlertEvent, AlertSource, Delivery, hookimpl, vendor_text, vendor_time
from mspflow.alerts.rules import Rule, add_rule, first_match, list_rules, regex_search, reorder_rules, update_rule
from mspflow.alerts.windows import active_at, add_window, matching_window
from mspflow.db.engine import Database
from mspflow.db.models import AlertRule, MaintenanceWindow
from mspflow.errors import ActionError
from mspflow.modules import DefinitionError
from mspflow.plugins import Plugins
from tests.distributions import Distributions

TENANT = "acme"


def normalize(delivery: Delivery) -> list[AlertEvent]:
    return [AlertEvent(kind="triggered", tenant=delivery.tenant, provider="acme", external_alert_id="a-1")]


class AlertPlugin:
    @hookimpl
    def register_alert_sources(self, register: Any) -> None:
        register(AlertSource("acme", normalize=normalize, poll=lambda ctx: [], reset_action="acme.alerts.reset"))


def test_an_alert_source_registers_through_its_hook() -> None:
    loaded = Plugins(entry_points=[], extra=[("acme", AlertPlugin())], strict=True)
    source = loaded.registry.alert_sources["acme"]
    assert source.reset_action == "acme.alerts.reset" and loaded.registry.owner_of("alert source", "acme") == "acme"


SOURCE = '''
from mspflow import AlertSource, hookimpl

@hookimpl
def register_alert_sources(register):
    register(AlertSource("acme", normalize=lambda delivery: []))
'''


def test_two_distributions_claiming_one_alert_source_are_both_refused(dists: Distributions) -> None:
    dists.install("mspflow-acme", "mspflow_acme", SOURCE)
    dists.install("mspflow-rogue", "mspflow_rogue", SOURCE)
    loaded = Plugins(strict=False)
    assert sorted(e.distribution for e in loaded.errors) == ["mspflow-acme", "mspflow-rogue"]
    assert all("alert source 'acme'" in e.error for e in loaded.errors)
    assert "acme" not in loaded.registry.alert_sources


def test_a_reset_action_must_be_the_plugins_own() -> None:
    with pytest.raises(DefinitionError, match="must be one of the plugin's own actions"):
        AlertSource("acme", normalize=normalize, reset_action="tickets.close").check()


def test_vendor_values_templated_as_none_and_tacticals_times_are_read() -> None:
    assert [vendor_text(v) for v in ("None", "", " null ", "disk")] == [None, None, None, "disk"]
    assert vendor_time("2026-11-29 09:42:17.503914+00:00") == datetime(2026, 11, 29, 9, 42, 17, 503914, tzinfo=UTC)
    assert vendor_time(1767225600.0) == datetime(2026, 1, 1, tzinfo=UTC) and vendor_time("None") is None


# -- rules -------------------------------------------------------------------------------------------------


def event(**fields: Any) -> AlertEvent:
    return AlertEvent(**{"kind": "triggered", "tenant": TENANT, "provider": "ninjaone", "external_alert_id": "x",
                         "severity": "CRITICAL", "message": "C: has 3.1 GB free", **fields})


def rule(conditions: dict[str, Any], rule_id: str = "r", priority: int = 10) -> Rule:
    return Rule.of(AlertRule(rule_id=rule_id, tenant=TENANT, name=rule_id, priority=priority, is_active=True,
                             conditions=conditions, actions={}))


def test_the_first_rule_whose_conditions_all_hold_wins_and_empty_conditions_catch_all() -> None:
    rules = [rule({"severities": ["minor"]}, "minor"), rule({"keywords": ["GB FREE"], "severities": ["critical"]},
                                                            "disk"), rule({}, "all")]
    assert first_match(rules, event()).rule_id == "disk"  # type: ignore[union-attr]
    assert first_match(rules, event(severity="MAJOR")).rule_id == "all"  # type: ignore[union-attr]
    assert first_match(rules[:2], event(severity="MAJOR")) is None
    assert first_match([rule({"message_regex": r"\d+\.\d GB"})], event()) is not None
    assert first_match([rule({"organizations": ["3"], "source_types": ["CONDITION_AGENT_CPU"]})],
                       event(organization="3", source_type="condition_agent_cpu")) is not None


def test_a_rule_that_fails_to_evaluate_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    broken = rule({}, "broken")
    object.__setattr__(broken, "_pattern", re.compile("(a|aa)+$"))
    caplog.set_level(logging.WARNING, "mspflow.alerts")
    chosen = first_match([broken, rule({}, "next")], event(message="a" * 40 + "b" * 300))
    assert chosen is not None and chosen.rule_id == "next"
    assert "alert rule broken (broken) failed to evaluate" in caplog.text


def test_regex_matching_has_a_time_limit_on_the_main_thread_and_in_worker_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from mspflow.alerts.rules import RegexTimeout

    slow, text = re.compile("(a|aa)+$"), "a" * 40 + "b" * 300
    with pytest.raises(RegexTimeout, match="took longer than"):
        regex_search(slow, text, limit_s=0.05)
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(RegexTimeout, match="took longer than"):
            pool.submit(regex_search, slow, text, 0.2).result()
        assert pool.submit(regex_search, re.compile("b+$"), text, 2.0).result() is True


@pytest.mark.parametrize(("conditions", "actions", "path"), [
    ({"message_regex": "disk ("}, {}, "conditions.message_regex"),
    ({"message_regex": "(a+)+$"}, {}, "conditions.message_regex"),
    ({"severity": ["critical"]}, {}, "conditions.severity"),
    ({}, {"create_ticket": {"title_template": "{{hostname}}"}}, "actions.create_ticket.title_template"),
    ({}, {"notify_users": "u-1"}, "actions.notify_users"),
])
def test_a_bad_rule_is_refused_when_saved_naming_the_field(db: Database, conditions: dict[str, Any],
                                                           actions: dict[str, Any], path: str) -> None:
    with db.session(write=True) as s, pytest.raises(ActionError) as refused:
        add_rule(s, TENANT, name="bad", conditions=conditions, actions=actions)
    assert refused.value.code == "VALIDATION_ERROR" and path in refused.value.message
    assert [f["path"] for f in refused.value.details["fields"]] == [path]


def test_rules_are_listed_updated_and_reordered_by_priority(db: Database) -> None:
    with db.session(write=True) as s:
        a = add_rule(s, TENANT, name="a", priority=20)
        b = add_rule(s, TENANT, name="b", priority=10, conditions={"keywords": ["disk"]})
        add_rule(s, "other-tenant", name="theirs")
        assert [r["name"] for r in list_rules(s, TENANT)] == ["b", "a"]
        reorder_rules(s, TENANT, [a["rule_id"], b["rule_id"]])
        assert [(r["name"], r["priority"]) for r in list_rules(s, TENANT)] == [("a", 10), ("b", 20)]
        updated = update_rule(s, TENANT, b["rule_id"], actions={"reset_alert_on_ticket_close": False})
        assert updated["conditions"] == {"keywords": ["disk"]}
        assert updated["actions"] == {"reset_alert_on_ticket_close": False}
        with pytest.raises(ActionError, match="every rule of the tenant exactly once"):
            reorder_rules(s, TENANT, [a["rule_id"]])
        with pytest.raises(ActionError, match="no alert rule"):
            update_rule(s, "other-tenant", a["rule_id"], name="stolen")


# -- maintenance windows -----------------------------------------------------------------------------------


def weekly(**fields: Any) -> MaintenanceWindow:
    return MaintenanceWindow(**{"tenant": TENANT, "name": "w", "recurrence": "weekly", "is_active": True,
                                "timezone": "Europe/Berlin", "weekdays": [2], "start_time": "22:00",
                                "duration_minutes": 180, **fields})


def test_a_weekly_window_follows_its_time_zone_across_midnight() -> None:
    w = weekly()  # Wednesdays 22:00 to Thursday 01:00, Berlin (UTC+1 in winter)
    assert active_at(w, datetime(2026, 12, 2, 21, 30, tzinfo=UTC))  # Wed 22:30 Berlin
    assert active_at(w, datetime(2026, 12, 2, 23, 59, tzinfo=UTC))  # Thu 00:59 Berlin
    assert not active_at(w, datetime(2026, 12, 3, 0, 1, tzinfo=UTC))  # Thu 01:01 Berlin
    assert not active_at(w, datetime(2026, 12, 2, 20, 59, tzinfo=UTC))  # Wed 21:59 Berlin
    assert not active_at(weekly(is_active=False), datetime(2026, 12, 2, 21, 30, tzinfo=UTC))


def test_a_window_matches_only_its_scope(db: Database) -> None:
    now = datetime.now(UTC)
    with db.session(write=True) as s:
        add_window(s, TENANT, name="one asset", asset_id="asset-1", starts_at=now - timedelta(minutes=1),
                   ends_at=now + timedelta(hours=1))
        add_window(s, TENANT, name="tactical", provider="tacticalrmm", client_id="c-1",
                   starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1))
        add_window(s, "other-tenant", name="theirs", starts_at=now - timedelta(minutes=1),
                   ends_at=now + timedelta(hours=1))

        def found(**scope: Any) -> str | None:
            row = matching_window(s, TENANT, at=now, **{"provider": "ninjaone", "client_id": None, "asset_id": None,
                                                       **scope})
            return None if row is None else row.name

        assert found(asset_id="asset-1") == "one asset"
        assert found(asset_id="asset-2") is None
        assert found(provider="tacticalrmm", client_id="c-1") == "tactical"
        assert found(provider="tacticalrmm", client_id="c-2") is None
        assert matching_window(s, TENANT, provider="ninjaone", client_id=None, asset_id="asset-1",
                               at=now + timedelta(hours=2)) is None


@pytest.mark.parametrize(("spec", "path"), [
    ({"recurrence": "once", "starts_at": "2026-12-01T10:00:00Z"}, "a one-off window needs starts_at and ends_at"),
    ({"recurrence": "weekly", "weekdays": [7], "start_time": "22:00", "duration_minutes": 60}, "weekdays"),
    ({"recurrence": "weekly", "weekdays": [1], "start_time": "25:00", "duration_minutes": 60}, "start_time"),
    ({"recurrence": "weekly", "weekdays": [1], "start_time": "22:00", "duration_minutes": 60,
      "timezone": "Mars/Olympus"}, "unknown time zone"),
])
def test_a_bad_window_is_refused_saying_why(db: Database, spec: dict[str, Any], path: str) -> None:
    with db.session(write=True) as s, pytest.raises(ActionError) as refused:
        add_window(s, TENANT, name="w", **spec)
    assert refused.value.code == "VALIDATION_ERROR" and path in refused.value.message
