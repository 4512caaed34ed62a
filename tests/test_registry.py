"""Registry: definitions are validated, re-registration is a no-op, conflicts name both plugins."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from mspflow.availability import rmm_integration
from mspflow.modules import ACTION_ID, Action, DefinitionError, Module, action
from mspflow.registry import RegistrationError, Registry
from tests.factories import PingInput, PingOutput, rmm_module


def ping(params: PingInput, ctx: Any) -> PingOutput:
    """Ping a device."""
    return PingOutput(ok=True)


def other_ping(params: PingInput, ctx: Any) -> PingOutput:
    """Ping a device another way."""
    return PingOutput(ok=False)


def test_registering_the_same_module_twice_is_a_noop() -> None:
    registry = Registry()
    module = rmm_module("acme", actions=3)
    registry.add_module(module, "mspflow-acme")
    registry.add_module(module, "mspflow-acme")
    assert list(registry.modules) == ["app:acme"]
    assert sorted(registry.actions) == ["acme.devices.op0@1", "acme.devices.op1@1", "acme.devices.op2@1"]
    assert registry.resolvers["rmm:acme"] == rmm_integration("acme")


def test_one_call_registers_tile_resolver_and_actions() -> None:
    registry = Registry()
    registry.add_module(rmm_module("acme"), "mspflow-acme")
    assert registry.modules["app:acme"].availability_key == "rmm:acme"
    assert "rmm:acme" in registry.resolvers
    assert registry.owner_of("action", "acme.devices.op0@1") == "mspflow-acme"


def test_a_different_action_under_the_same_key_names_both_distributions() -> None:
    registry = Registry()
    registry.add_action(action("acme.devices.ping", label="Ping", handler=ping), "mspflow-acme")
    with pytest.raises(RegistrationError) as err:
        registry.add_action(action("acme.devices.ping", label="Ping", handler=other_ping), "mspflow-evil")
    assert "mspflow-acme" in str(err.value) and "mspflow-evil" in str(err.value)
    assert registry.actions["acme.devices.ping@1"].handler is ping


def test_a_new_version_of_an_action_is_not_a_conflict() -> None:
    registry = Registry()
    registry.add_action(action("acme.devices.ping", label="Ping", handler=ping), "a")
    registry.add_action(action("acme.devices.ping", label="Ping", handler=other_ping, version=2), "a")
    assert registry.action("acme.devices.ping").version == 2  # type: ignore[union-attr]
    assert registry.action("acme.devices.ping", 1).handler is ping  # type: ignore[union-attr]


def test_a_different_module_under_the_same_group_key_is_rejected_whole() -> None:
    registry = Registry()
    registry.add_module(rmm_module("acme", actions=1), "mspflow-acme")
    rival = rmm_module("acme", actions=1, description="another acme")
    with pytest.raises(RegistrationError, match=r"mspflow-acme.*mspflow-rival|already registered"):
        registry.add_module(rival, "mspflow-rival")
    assert registry.owner_of("module", "app:acme") == "mspflow-acme"


def test_a_failed_module_registration_leaves_nothing_behind() -> None:
    registry = Registry()
    registry.add_action(action("acme.devices.op1", label="Ping", handler=ping), "mspflow-other")
    module = rmm_module("acme", actions=2)  # op0 is new, op1 clashes with mspflow-other's
    with pytest.raises(RegistrationError, match=r"mspflow-other"):
        registry.add_module(module, "mspflow-acme")
    assert "app:acme" not in registry.modules
    assert "acme.devices.op0@1" not in registry.actions
    assert "rmm:acme" not in registry.resolvers


def test_side_effectful_action_without_idempotency_is_rejected() -> None:
    with pytest.raises(DefinitionError, match=r"idempotency='engine_provided'"):
        action("acme.devices.reboot", label="Reboot", handler=ping, side_effectful=True, idempotency="none")
    module = Module("app:acme", label="Acme", availability=rmm_integration("acme"))
    with pytest.raises(DefinitionError, match=r"side-effectful"):
        module.action("acme.devices.reboot", label="Reboot", side_effectful=True, idempotency="none")(ping)


def test_side_effectful_actions_default_to_engine_provided_idempotency() -> None:
    act = action("acme.devices.reboot", label="Reboot", handler=ping, side_effectful=True)
    assert act.idempotency == "engine_provided"


def test_module_without_availability_key_is_rejected() -> None:
    module = Module("app:acme", label="Acme")
    module.action("acme.devices.ping", label="Ping")(ping)
    with pytest.raises(DefinitionError, match=r"no availability key"):
        Registry().add_module(module, "mspflow-acme")


def test_module_whose_default_action_does_not_exist_is_rejected() -> None:
    module = Module("app:acme", label="Acme", availability=rmm_integration("acme"),
                    default_action_id="acme.devices.missing")
    module.action("acme.devices.ping", label="Ping")(ping)
    with pytest.raises(DefinitionError, match=r"acme.devices.missing"):
        Registry().add_module(module, "mspflow-acme")


def test_module_whose_allowed_action_ids_do_not_exist_is_rejected() -> None:
    module = Module("app:acme", label="Acme", availability=rmm_integration("acme"),
                    allowed_action_ids=("transform.text.nope",))
    module.action("acme.devices.ping", label="Ping")(ping)
    with pytest.raises(RegistrationError, match=r"transform.text.nope"):
        Registry().add_module(module, "mspflow-acme")


def test_module_may_offer_an_action_registered_by_another_plugin() -> None:
    registry = Registry()
    registry.add_action(action("shared.devices.ping", label="Ping", handler=ping), "mspflow-shared")
    module = Module("app:acme", label="Acme", availability=rmm_integration("acme"),
                    allowed_action_ids=("shared.devices.ping",))
    registry.add_module(module, "mspflow-acme")
    assert [a.id for a in registry.actions_of(module)] == ["shared.devices.ping"]


def test_actions_of_follows_registrations_made_after_a_lookup() -> None:
    registry = Registry()
    module = rmm_module("acme", actions=2)
    registry.add_module(module, "mspflow-acme")
    assert [a.key for a in registry.actions_of(module)] == ["acme.devices.op0@1", "acme.devices.op1@1"]
    registry.add_action(action("acme.devices.op0", label="Op", handler=ping, version=3), "mspflow-acme")
    registry.add_action(action("acme.devices.op0", label="Op", handler=ping, version=2), "mspflow-acme")
    assert [a.key for a in registry.actions_of(module)] == \
        ["acme.devices.op0@1", "acme.devices.op0@2", "acme.devices.op0@3", "acme.devices.op1@1"]
    assert registry.action("acme.devices.op0").version == 3  # type: ignore[union-attr]
    clash = Module("app:other", label="Other", availability=rmm_integration("other"))
    clash.action("acme.devices.op9", label="Op 9")(ping)
    clash.action("acme.devices.op1", label="Not op 1")(ping)  # conflicts after op9 went in
    with pytest.raises(RegistrationError):
        registry.add_module(clash, "mspflow-other")
    assert registry.actions_of(clash) == [a for a in registry.actions_of(module) if a.id == "acme.devices.op1"]
    assert registry.action("acme.devices.op9") is None
    registry.remove_owner("mspflow-acme")
    assert registry.actions_of(module) == [] and registry.action("acme.devices.op0") is None


def test_explicit_resolver_overrides_the_one_a_module_carries_in_either_order() -> None:
    def host_resolver(session: Any, tenant_id: str) -> bool:
        return True

    host_resolver.key = "rmm:acme"  # type: ignore[attr-defined]
    for order in ("module-first", "resolver-first"):
        registry = Registry()
        if order == "module-first":
            registry.add_module(rmm_module("acme"), "mspflow-acme")
            registry.add_resolver("rmm:acme", host_resolver, "host")  # type: ignore[arg-type]
        else:
            registry.add_resolver("rmm:acme", host_resolver, "host")  # type: ignore[arg-type]
            registry.add_module(rmm_module("acme"), "mspflow-acme")
        assert registry.resolvers["rmm:acme"] is host_resolver, order


def test_two_different_explicit_resolvers_conflict() -> None:
    registry = Registry()
    registry.add_resolver("flag:beta", lambda s, t: True, "mspflow-a")  # type: ignore[arg-type]
    with pytest.raises(RegistrationError, match=r"mspflow-a.*mspflow-b"):
        registry.add_resolver("flag:beta", lambda s, t: False, "mspflow-b")  # type: ignore[arg-type]


def test_remove_owner_forgets_everything_it_registered() -> None:
    registry = Registry()
    registry.add_module(rmm_module("acme"), "mspflow-acme")
    registry.add_module(rmm_module("zeta"), "mspflow-zeta")
    registry.remove_owner("mspflow-acme")
    assert list(registry.modules) == ["app:zeta"]
    assert all(k.startswith("zeta.") for k in registry.actions)
    assert list(registry.resolvers) == ["rmm:zeta"]


def test_models_come_from_the_handler_annotations() -> None:
    act = action("acme.devices.ping", label="Ping", handler=ping)
    assert act.input_model is PingInput and act.output_model is PingOutput
    assert act.description == "Ping a device."
    assert act.input_schema["required"] == ["device_id"]


def test_non_pydantic_models_are_rejected() -> None:
    def bad(params: dict, ctx: Any) -> dict:  # type: ignore[type-arg]
        return {}

    with pytest.raises(DefinitionError, match=r"pydantic"):
        action("acme.devices.bad", label="Bad", handler=bad)


segment = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


@given(st.lists(segment, min_size=2, max_size=3))
def test_well_formed_action_ids_are_accepted(parts: list[str]) -> None:
    act = action(".".join(parts), label="X", handler=ping)
    assert act.key == ".".join(parts) + "@1"


@given(st.text(max_size=40))
def test_action_ids_outside_the_pattern_are_rejected(candidate: str) -> None:
    if ACTION_ID.match(candidate):
        return
    with pytest.raises(DefinitionError, match=r"provider.noun.verb"):
        action(candidate, label="X", handler=ping)


@pytest.mark.parametrize("bad", ["Acme.devices.ping", "acme", "acme.devices.ping.now", "acme..ping",
                                 "acme.devices.ping ", "acme.dev-ices.ping", "1acme.devices.ping"])
def test_specific_malformed_ids(bad: str) -> None:
    with pytest.raises(DefinitionError):
        action(bad, label="X", handler=ping)


def test_action_definitions_compare_by_value() -> None:
    class In(BaseModel):
        x: int

    a = Action(id="a.b.c", version=1, handler=ping, input_model=In, output_model=PingOutput, label="A")
    b = Action(id="a.b.c", version=1, handler=ping, input_model=In, output_model=PingOutput, label="A")
    assert a == b and hash(a) == hash(b)


def test_a_namespace_belongs_to_the_distribution_that_registered_into_it_first() -> None:
    registry = Registry()
    registry.add_action(action("acme.devices.ping", label="Ping", handler=ping), "mspflow-acme")
    with pytest.raises(RegistrationError, match=r"namespace 'acme' belongs to 'mspflow-acme'.*'mspflow-evil'"):
        registry.add_action(action("acme.devices.wipe", label="Wipe", handler=other_ping), "mspflow-evil")
    with pytest.raises(RegistrationError, match=r"'mspflow-acme'.*'mspflow-evil'"):  # even an identical one
        registry.add_action(action("acme.devices.ping", label="Ping", handler=ping), "mspflow-evil")
    registry.add_action(action("acme.devices.wipe", label="Wipe", handler=other_ping), "mspflow-acme")


def test_core_namespaces_and_groups_are_the_cores() -> None:
    registry = Registry()
    with pytest.raises(RegistrationError, match=r"'transform' belongs to 'mspflow'"):
        registry.add_action(action("transform.text.evil", label="X", handler=ping), "mspflow-evil")
    with pytest.raises(RegistrationError, match=r"group 'control' belongs to 'mspflow'"):
        registry.add_module(Module("control", label="C", availability="core",
                                   actions=[action("x.y.z", label="X", handler=ping)]), "x")
    with pytest.raises(RegistrationError, match=r"'core' belongs to the mspflow core"):
        registry.add_resolver("core", lambda s, t: True, "mspflow-evil")  # type: ignore[arg-type]
    registry.add_action(action("transform.text.more", label="X", handler=ping), "mspflow")


def test_conflicts_refuse_every_claimant_whatever_the_order() -> None:
    from mspflow.registry import Claim, conflicts

    claims = [Claim("namespace", "acme", "mspflow-acme", "acme.devices.ping"),
              Claim("namespace", "acme", "mspflow-evil", "acme.devices.ping"),
              Claim("group", "app:acme", "mspflow-acme"), Claim("namespace", "zeta", "mspflow-zeta"),
              Claim("namespace", "transform", "mspflow"), Claim("namespace", "transform", "mspflow-zeta2")]
    for ordered in (claims, claims[::-1]):
        refused = conflicts(ordered)
        assert sorted(refused) == ["mspflow-acme", "mspflow-evil", "mspflow-zeta2"]
        assert refused["mspflow-acme"] == refused["mspflow-evil"]
        assert "mspflow-acme and mspflow-evil both claim action-id namespace 'acme'" in refused["mspflow-acme"][0]
        assert "belongs to the mspflow core" in refused["mspflow-zeta2"][0]


def test_resolver_claims_conflict_only_when_they_differ() -> None:
    from mspflow.registry import Claim, conflicts

    same = [Claim("resolver", "rmm:acme", "a", value=rmm_integration("acme"), explicit=False),
            Claim("resolver", "rmm:acme", "b", value=rmm_integration("acme"), explicit=False)]
    assert conflicts(same) == {}
    override = [same[0], Claim("resolver", "rmm:acme", "host", value=object())]  # explicit beats a module's
    assert conflicts(override) == {}
    rivals = [Claim("resolver", "flag:x", "a", value=object()), Claim("resolver", "flag:x", "b", value=object())]
    assert sorted(conflicts(rivals)) == ["a", "b"]


def test_the_module_defining_an_action_gates_it_whatever_the_order() -> None:
    own = rmm_module("acme", actions=1)
    for first_is_own in (True, False):
        registry = Registry()
        thief = Module("app:aaa", label="Thief", availability=rmm_integration("aaa"),
                       allowed_action_ids=("acme.devices.op0",))
        if first_is_own:
            registry.add_module(own, "mspflow-acme")
            registry.add_module(thief, "mspflow-aaa")
        else:
            registry.add_action(own.actions[0], "mspflow-acme")
            registry.add_module(thief, "mspflow-aaa")
            registry.add_module(own, "mspflow-acme")
        assert registry.module_of("acme.devices.op0") is own


def test_remove_plugin_keeps_the_other_entry_points_of_the_distribution() -> None:
    registry = Registry()
    registry.add_module(rmm_module("acme"), "mspflow-acme", plugin="acme")
    registry.add_action(action("acme.extra.ping", label="Ping", handler=ping), "mspflow-acme", plugin="acme_extra")
    registry.remove_plugin("acme_extra")
    assert "app:acme" in registry.modules and "acme.extra.ping@1" not in registry.actions
