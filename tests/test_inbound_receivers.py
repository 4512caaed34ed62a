"""The register_receivers hook, the registry's one-receiver-per-provider rule, and the verification helpers."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from mspflow import Delivery, Receiver, hookimpl, webhook
from mspflow.inbound.verify import InboundRequest, body_hash, constant_time_equals, sign
from mspflow.modules import DefinitionError
from mspflow.plugins import Plugins
from mspflow.registry import RegistrationError, Registry
from tests.distributions import Distributions


def parse(delivery: Delivery) -> list[Any]:
    return []


def receiver(provider: str = "acme", header: str = "X-Acme-Signature") -> Receiver:
    return Receiver(provider, verify=webhook.hmac_signature(header, prefix="sha256="), parse=parse)


class Plugin:
    def __init__(self, *receivers: Receiver) -> None:
        self.receivers = receivers

    @hookimpl
    def register_receivers(self, register: Any) -> None:
        for r in self.receivers:
            register(r)


def test_a_plugin_registers_its_receiver_through_the_hook() -> None:
    loaded = Plugins(entry_points=[], extra=[("mspflow-acme", Plugin(receiver()))], strict=True)
    assert loaded.registry.receivers["acme"] == receiver()
    assert loaded.registry.owner_of("receiver", "acme") == "mspflow-acme"


def test_the_same_receiver_twice_is_a_no_op() -> None:
    registry = Registry()
    registry.add_receiver(receiver(), "mspflow-acme")
    registry.add_receiver(receiver(), "mspflow-acme")
    assert list(registry.receivers) == ["acme"]


def test_two_distributions_claiming_one_provider_are_both_refused(dists: Distributions) -> None:
    source = """
        from mspflow import Receiver, hookimpl, webhook

        def parse(delivery):
            return []

        @hookimpl
        def register_receivers(register):
            register(Receiver("acme", verify=webhook.hmac_signature("{header}"), parse=parse))
    """
    dists.install("mspflow-acme", "mspflow_acme", source.replace("{header}", "X-Acme-Signature"))
    dists.install("mspflow-acme-fork", "mspflow_acme_fork", source.replace("{header}", "X-Fork-Signature"))
    loaded = Plugins(strict=False)
    assert "acme" not in loaded.registry.receivers  # fail closed, whatever the load order
    assert sorted(e.distribution for e in loaded.errors) == ["mspflow-acme", "mspflow-acme-fork"]
    for error in loaded.errors:
        assert "mspflow-acme and mspflow-acme-fork both claim receiver 'acme'" in error.error


def test_a_receiver_for_a_provider_registered_by_another_distribution_is_refused() -> None:
    registry = Registry()
    registry.add_receiver(receiver(), "one")
    with pytest.raises(RegistrationError, match="already registered by 'one'; 'two' cannot register another"):
        registry.add_receiver(receiver(header="X-Two"), "two")
    with pytest.raises(RegistrationError, match="already registered by 'one'; 'one' cannot"):
        registry.add_receiver(receiver(header="X-Other"), "one")
    assert registry.receivers == {"acme": receiver()}


def test_a_plugin_registering_something_else_as_a_receiver_is_a_load_error() -> None:
    class Wrong:
        @hookimpl
        def register_receivers(self, register: Any) -> None:
            register("acme")

    loaded = Plugins(entry_points=[], extra=[("wrong", Wrong())], strict=False)
    assert "expects an mspflow.Receiver, got str" in loaded.errors[0].error


def test_a_failed_plugin_takes_its_receiver_with_it() -> None:
    class Broken(Plugin):
        @hookimpl
        def register_permission_checker(self, register: Any) -> None:
            register("not callable")

    loaded = Plugins(entry_points=[], extra=[("broken", Broken(receiver()))], strict=False)
    assert loaded.registry.receivers == {} and len(loaded.errors) == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"provider": "Acme"}, "must match"),
    ({"provider": "acme-rmm"}, "must match"),
    ({"verify": "X-Acme-Signature"}, "verify must be a strategy"),
    ({"parse": None}, "parse must be callable"),
    ({"content_types": ("application/xml",)}, "cannot read application/xml"),
    ({"content_types": ()}, "at least one type"),
])
def test_a_malformed_receiver_is_refused(kwargs: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"provider": "acme", "verify": webhook.shared_secret("X-Secret"), "parse": parse}
    with pytest.raises(DefinitionError, match=message):
        Registry().add_receiver(Receiver(**(fields | kwargs)), "mspflow-acme")


# -- verification helpers ----------------------------------------------------------------------------------


def request(headers: dict[str, str], body: bytes = b'{"a": 1}') -> InboundRequest:
    return InboundRequest("POST", "/hooks/acme/t", {k.lower(): v for k, v in headers.items()}, body)


def test_hmac_signature_matches_an_independent_computation() -> None:
    body = b'{"event_type": "alert_active", "event_id": "e1"}'
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body, prefix="sha256=") == expected
    level = webhook.hmac_signature("X-Level-Signature", prefix="sha256=")
    assert level.verify(request({"X-Level-Signature": expected}, body), "s3cret")
    assert level.verify(request({"x-level-signature": expected.upper()}, body), "s3cret")  # hex in any case
    assert not level.verify(request({"X-Level-Signature": expected}, body + b" "), "s3cret")
    assert not level.verify(request({"X-Level-Signature": expected}, body), "other")
    assert not level.verify(request({"X-Level-Signature": expected[7:]}, body), "s3cret")  # prefix missing
    assert not level.verify(request({}, body), "s3cret")
    assert not level.verify(request({"X-Level-Signature": expected}, body), None)


def test_hmac_signature_in_base64_and_other_algorithms() -> None:
    body = b"payload"
    digest = base64.b64encode(hmac.new(b"k3y!", body, hashlib.sha1).digest()).decode()
    strategy = webhook.hmac_signature("X-Sig", algorithm="sha1", encoding="base64")
    assert strategy.verify(request({"X-Sig": digest}, body), "k3y!")
    assert not strategy.verify(request({"X-Sig": digest.lower()}, body), "k3y!")
    with pytest.raises(ValueError, match="unsupported HMAC algorithm 'md5'"):
        webhook.hmac_signature("X-Sig", algorithm="md5")


def test_shared_secret_with_and_without_a_scheme() -> None:
    plain = webhook.shared_secret("X-Secret")
    assert plain.verify(request({"X-Secret": "abc123"}), "abc123")
    assert not plain.verify(request({"X-Secret": "abc1234"}), "abc123")
    assert not plain.verify(request({"X-Secret": ""}), "")
    bearer = webhook.shared_secret("Authorization", scheme="Bearer")
    assert bearer.verify(request({"Authorization": "bearer abc123"}), "abc123")
    assert not bearer.verify(request({"Authorization": "abc123"}), "abc123")
    assert not bearer.verify(request({"Authorization": "Basic abc123"}), "abc123")


def test_a_custom_verifier_decides_and_a_raise_is_a_refusal() -> None:
    def check(req: InboundRequest, secret: str | None) -> bool:
        return constant_time_equals(req.header("Authorization") or "", "Bearer jwt")

    custom = webhook.custom(check)
    assert custom.verify(request({"Authorization": "Bearer jwt"}), None)
    assert not custom.verify(request({"Authorization": "Bearer other"}), None)
    assert custom.secret_headers() == ("authorization",) and not custom.needs_secret


def test_delivery_id_lookups() -> None:
    payload = {"event_id": "e-1", "data": {"id": 42, "list": [1]}}
    assert webhook.json_field("event_id")({}, payload) == "e-1"
    assert webhook.json_field("data.id")({}, payload) == "42"
    assert webhook.json_field("data.list")({}, payload) is None
    assert webhook.json_field("missing.x")({}, payload) is None
    assert webhook.json_field("event_id")({}, ["not", "a", "dict"]) is None
    assert webhook.header("X-Request-Id")({"x-request-id": "r-9"}, payload) == "r-9"
    assert body_hash(b"x") == "sha256:" + hashlib.sha256(b"x").hexdigest()


def test_constant_time_equals() -> None:
    assert constant_time_equals("abc", "abc") and constant_time_equals(b"abc", "abc")
    assert not constant_time_equals("abc", "abd") and not constant_time_equals("abc", "abcd")
