"""Alert rules: which alerts become tickets, how, and who hears of it.

A tenant's active rules are tried in ``priority`` order (lowest first); the first whose conditions all
hold decides (empty conditions: a catch-all). A rule that fails to evaluate is logged and skipped.
``conditions`` and ``actions`` are JSON, validated when saved (:func:`validate_rule`): a bad regex is
refused then, naming the field.

Examples::

    conditions = {"severities": ["CRITICAL", "MAJOR"], "keywords": ["disk"], "message_regex": r"C: .* free"}
    actions = {"create_ticket": {"board": "Alerts", "severity_priority": {"CRITICAL": "P1"},
                                 "title_template": "{{severity}}: {{message}} on {{device}}"},
               "auto_resolve_ticket": True, "reset_alert_on_ticket_close": True, "notify_users": ["u-1"]}
    add_rule(session, "acme-corp", name="Disks", priority=10, conditions=conditions, actions=actions)
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mspflow.errors import ActionError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mspflow.alerts.events import AlertEvent
    from mspflow.db.models import AlertRule

log = logging.getLogger("mspflow.alerts")

REGEX_MAX_LENGTH = 512
REGEX_TIME_LIMIT_S = 0.05
MATCH_TEXT_LIMIT = 10_000
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*(?:[+*]|\{\d*,\d*\})")
TEMPLATE_FIELDS = ("device", "message", "severity", "organization")


class Conditions(BaseModel):
    """All given lists must match (any value within a list); empty: a catch-all."""

    model_config = ConfigDict(extra="forbid")

    severities: list[str] = Field(default_factory=list)
    activity_types: list[str] = Field(default_factory=list)
    alert_classes: list[str] = Field(default_factory=list)
    source_types: list[str] = Field(default_factory=list)
    organizations: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    message_regex: str | None = None

    @field_validator("message_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if len(value) > REGEX_MAX_LENGTH:
            raise ValueError(f"the regex is longer than {REGEX_MAX_LENGTH} characters")
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if _NESTED_QUANTIFIER.search(value):
            raise ValueError("a quantified group that itself repeats (like (a+)+) can take exponential time; "
                             "rewrite it without nested repetition")
        return value


class CreateTicket(BaseModel):
    model_config = ConfigDict(extra="forbid")

    board: str | None = None
    priority: str | None = None
    severity_priority: dict[str, str] = Field(default_factory=dict)
    assignee: str | None = None
    title_template: str = "{{severity}} alert on {{device}}: {{message}}"
    description_template: str = ("{{message}}\n\nDevice: {{device}}\nSeverity: {{severity}}\n"
                                 "Organization: {{organization}}")

    @field_validator("title_template", "description_template")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        unknown = sorted({name for name in re.findall(r"\{\{\s*([^}]*?)\s*\}\}", value)} - set(TEMPLATE_FIELDS))
        if unknown:
            raise ValueError(f"unknown placeholder(s) {', '.join(unknown)}; use "
                             + ", ".join("{{" + f + "}}" for f in TEMPLATE_FIELDS))
        return value


class Actions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    create_ticket: CreateTicket | None = None
    auto_resolve_ticket: bool = False
    reset_alert_on_ticket_close: bool = True
    notify_users: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Rule:
    rule_id: str
    name: str
    priority: int
    conditions: Conditions
    actions: Actions
    _pattern: re.Pattern[str] | None = None

    @classmethod
    def of(cls, row: AlertRule) -> Rule:
        conditions = Conditions.model_validate(row.conditions or {})
        pattern = re.compile(conditions.message_regex) if conditions.message_regex else None
        return cls(row.rule_id, row.name, row.priority, conditions, Actions.model_validate(row.actions or {}),
                   pattern)

    def matches(self, event: AlertEvent) -> bool:
        c = self.conditions

        def among(values: list[str], value: str | None) -> bool:
            return not values or (value is not None and value.casefold() in {v.casefold() for v in values})

        if not (among(c.severities, event.severity) and among(c.activity_types, event.activity_type)
                and among(c.alert_classes, event.alert_class) and among(c.source_types, event.source_type)
                and among(c.organizations, event.organization)):
            return False
        text = f"{event.title or ''}\n{event.message or ''}"
        if c.keywords and not any(k.casefold() in text.casefold() for k in c.keywords):
            return False
        return self._pattern is None or regex_search(self._pattern, event.message or "")


class RegexTimeout(Exception):
    pass


def regex_search(pattern: re.Pattern[str], text: str, limit_s: float = REGEX_TIME_LIMIT_S) -> bool:
    """``pattern.search(text)`` on the first 10,000 characters, within ``limit_s``; RegexTimeout beyond.

    CPython's regex engine holds the GIL but checks for signals, so on the main thread a timer signal
    stops it; elsewhere (worker threads) the match runs in a helper process that is replaced when it
    overruns. Short texts are matched inline: the patterns saved are refused nested repetition, so a few
    hundred characters cannot take long.
    """
    text = text[:MATCH_TEXT_LIMIT]
    if len(text) <= 256:
        return pattern.search(text) is not None
    if threading.current_thread() is threading.main_thread():
        return _search_with_alarm(pattern, text, limit_s)
    return _Matcher.shared().search(pattern.pattern, pattern.flags, text, limit_s)


def _search_with_alarm(pattern: re.Pattern[str], text: str, limit_s: float) -> bool:
    import signal

    def expire(signum: int, frame: object) -> None:
        raise RegexTimeout(f"the regex {pattern.pattern!r} took longer than {limit_s:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        return pattern.search(text) is not None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _search_in_child(source: str, flags: int, text: str) -> bool:
    return re.compile(source, flags).search(text) is not None


class _Matcher:
    """One helper process per worker process for matches off the main thread."""

    _instance: _Matcher | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._pool: Any = None

    @classmethod
    def shared(cls) -> _Matcher:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def search(self, source: str, flags: int, text: str, limit_s: float) -> bool:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures import TimeoutError as FutureTimeout

        with self._lock:
            if self._pool is None:
                started = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
                started.submit(_search_in_child, "", 0, "").result(timeout=60)  # started before it is timed
                self._pool = started
            pool = self._pool
        future = pool.submit(_search_in_child, source, flags, text)
        try:
            return bool(future.result(timeout=limit_s))
        except FutureTimeout:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)
            raise RegexTimeout(f"the regex {source!r} took longer than {limit_s:g} s") from None


def first_match(rules: Sequence[Rule], event: AlertEvent) -> Rule | None:
    """The first rule (already in priority order) whose conditions hold; a rule that fails is skipped."""
    for rule in rules:
        try:
            if rule.matches(event):
                return rule
        except Exception as exc:
            log.warning("alert rule %s (%s) failed to evaluate for alert %s and was skipped: %s", rule.rule_id,
                        rule.name, event.external_alert_id, exc)
    return None


def render(template: str, values: dict[str, str | None]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values.get(m.group(1)) or "", template)


# -- storage ---------------------------------------------------------------------------------------------


def validate_rule(conditions: Any, actions: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rule's JSON, checked: ``VALIDATION_ERROR`` naming each bad field (``conditions.message_regex``)."""
    fields: list[dict[str, str]] = []
    out: list[dict[str, Any]] = []
    for name, model, value in (("conditions", Conditions, conditions), ("actions", Actions, actions)):
        try:
            out.append(model.model_validate(value or {}).model_dump(exclude_defaults=True))
        except ValidationError as exc:
            for err in exc.errors(include_url=False, include_input=False):
                path = ".".join([name, *(str(p) for p in err["loc"])])
                message = str(err["msg"]).removeprefix("Value error, ")
                fields.append({"path": path, "message": message})
    if fields:
        summary = "; ".join(f"{f['path']}: {f['message']}" for f in fields)
        raise ActionError("VALIDATION_ERROR", f"invalid rule: {summary}", details={"fields": fields})
    return out[0], out[1]


def active_rules(session: Session, tenant: str) -> list[Rule]:
    """The tenant's active rules in evaluation order; a row that no longer validates is logged and left out.

    Read as plain columns, and each rule parsed once per process per content (:func:`_parsed`).
    """
    from sqlalchemy import Text, cast, select

    from mspflow.db.models import AlertRule as R

    rows = session.execute(select(R.rule_id, R.name, R.priority, cast(R.conditions, Text).label("conditions"),
                                  cast(R.actions, Text).label("actions")).where(
        R.tenant == tenant, R.is_active.is_(True)).order_by(R.priority, R.created_at, R.rule_id))
    rules = []
    for row in rows:
        try:
            rules.append(_parsed(row))
        except Exception as exc:
            log.warning("alert rule %s (%s) of tenant %s is invalid and was skipped: %s", row.rule_id, row.name,
                        tenant, exc)
    return rules


_PARSED: dict[tuple[str, int, str, str], Rule] = {}
_PARSED_MAX = 10_000


def _parsed(row: Any) -> Rule:
    """The rule of a row whose ``conditions`` and ``actions`` are JSON text, remembered by that content, so
    the JSON is decoded, validated and its regex compiled once per process, not per alert."""
    key = (row.rule_id, row.priority, row.conditions or "{}", row.actions or "{}")
    found = _PARSED.get(key)
    if found is None:
        import json

        conditions = Conditions.model_validate(json.loads(key[2]) or {})
        pattern = re.compile(conditions.message_regex) if conditions.message_regex else None
        found = Rule(row.rule_id, row.name, row.priority, conditions,
                     Actions.model_validate(json.loads(key[3]) or {}), pattern)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = found
    return found if found.name == row.name else Rule(found.rule_id, row.name, found.priority, found.conditions,
                                                     found.actions, found._pattern)


def to_json(row: AlertRule) -> dict[str, Any]:
    return {"rule_id": row.rule_id, "tenant": row.tenant, "name": row.name, "priority": row.priority,
            "is_active": row.is_active, "conditions": row.conditions, "actions": row.actions}


def add_rule(session: Session, tenant: str, *, name: str, priority: int = 100, conditions: Any = None,
             actions: Any = None, is_active: bool = True) -> dict[str, Any]:
    from mspflow.db.models import AlertRule

    if not name or not name.strip():
        raise ActionError("VALIDATION_ERROR", "invalid rule: name: must not be empty",
                          details={"fields": [{"path": "name", "message": "must not be empty"}]})
    cond, act = validate_rule(conditions, actions)
    row = AlertRule(tenant=tenant, name=name.strip(), priority=priority, is_active=is_active, conditions=cond,
                    actions=act)
    session.add(row)
    session.flush()
    return to_json(row)


def _row(session: Session, tenant: str, rule_id: str) -> AlertRule:
    from mspflow.db.models import AlertRule

    row = session.get(AlertRule, rule_id)
    if row is None or row.tenant != tenant:
        raise ActionError.not_found(f"no alert rule {rule_id!r} for tenant {tenant!r}; see `mspflow alerts rules "
                                    f"list --tenant {tenant}`", rule_id=rule_id)
    return row


def update_rule(session: Session, tenant: str, rule_id: str, *, name: str | None = None,
                priority: int | None = None, conditions: Any = None, actions: Any = None,
                is_active: bool | None = None) -> dict[str, Any]:
    row = _row(session, tenant, rule_id)
    cond, act = validate_rule(row.conditions if conditions is None else conditions,
                              row.actions if actions is None else actions)
    row.conditions, row.actions = cond, act
    if name is not None:
        row.name = name
    if priority is not None:
        row.priority = priority
    if is_active is not None:
        row.is_active = is_active
    session.flush()
    return to_json(row)


def delete_rule(session: Session, tenant: str, rule_id: str) -> None:
    session.delete(_row(session, tenant, rule_id))
    session.flush()


def list_rules(session: Session, tenant: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from mspflow.db.models import AlertRule

    rows = session.execute(select(AlertRule).where(AlertRule.tenant == tenant)
                           .order_by(AlertRule.priority, AlertRule.created_at, AlertRule.rule_id)).scalars()
    return [to_json(r) for r in rows]


def reorder_rules(session: Session, tenant: str, rule_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Give the listed rules priorities 10, 20, … in that order; every rule of the tenant must be listed."""
    current = {r["rule_id"] for r in list_rules(session, tenant)}
    if sorted(rule_ids) != sorted(current) or len(set(rule_ids)) != len(rule_ids):
        missing = sorted(current - set(rule_ids))
        unknown = sorted(set(rule_ids) - current)
        raise ActionError("VALIDATION_ERROR", "reorder needs every rule of the tenant exactly once"
                          + (f"; missing: {', '.join(missing)}" if missing else "")
                          + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    for i, rule_id in enumerate(rule_ids):
        _row(session, tenant, rule_id).priority = (i + 1) * 10
    session.flush()
    return list_rules(session, tenant)
