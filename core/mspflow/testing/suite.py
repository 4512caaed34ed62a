"""The plugin contract suite: one line in a plugin's tests runs the whole contract for every action.

Examples::

    # tests/test_contract.py of mspflow-acme
    from mspflow.testing import PluginContract
    from mspflow_acme import acme

    class TestContract(PluginContract):
        module = acme

pytest then runs, against the plugin as installed (its entry point, through the ``mspflow_app``
fixture) and its own simulator (``Module(simulator=...)``, mounted in-process):

* ``test_action_id_and_module`` — ids are ``<provider>.noun.verb`` (or ``<provider>.verb_noun``), the tile
  offers the action, and the installed plugin registers exactly this module;
* ``test_designer_metadata`` — labels, descriptions, icon and category for the designer;
* ``test_schemas_are_json_schema`` — input and output schemas serialize to JSON and are valid JSON Schema;
* ``test_side_effects_use_engine_idempotency`` — side-effectful actions declare ``engine_provided``;
* ``test_broken_input_is_refused_before_the_vendor`` — inputs drawn from the action's input schema and
  then broken (non-object JSON, a missing required field, a wrong type, a null, a 1 MB string, unicode
  text of the wrong shape, an unknown field the schema forbids) end as ``VALIDATION_ERROR`` and the
  simulator records no request;
* ``test_unknown_fields_never_reach_the_handler`` — an unknown field is refused or dropped by the model;
* ``test_strings_are_bounded`` — every string input declares a ``max_length`` (a 1 MB string is refused);
* ``test_valid_input_is_accepted`` — what the schema allows, the model accepts (the designer cannot
  save a step the action then refuses);
* ``test_unavailable_for_a_disconnected_tenant`` and ``test_refuses_to_run_for_a_disconnected_tenant``
  — the tile says why, the action answers ``INTEGRATION_INACTIVE`` and reaches no vendor;
* ``test_echoed_secrets_never_leak`` — the simulator's demo secrets are planted in the tenant's secrets
  and the simulator echoes every credential it receives into its answers; none of it appears in outputs,
  errors, invocation rows or logs;
* ``test_sources_follow_the_import_rule`` — :func:`mspflow.testing.check_imports` on the package.

Inputs are drawn with Hypothesis (profile ``mspflow-fast`` by default, ``mspflow-ci`` with more examples
when ``CI`` is set or ``MSPFLOW_HYPOTHESIS_PROFILE=ci``; see :mod:`mspflow.testing.strategies`).

Class attributes a plugin may set besides ``module``: ``examples`` (``{action id: input}`` known to
succeed against the simulator; the simulator's ``demo_calls()`` are used too) and ``tenant``. A tile
whose availability is not ``rmm:<provider>`` or ``integration:teams`` overrides :meth:`PluginContract.connect`
and :meth:`PluginContract.disconnect`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, quote_plus

import httpx
import pytest
from hypothesis import find, given
from pydantic import BaseModel, ValidationError

from mspflow.testing.contract import check_module
from mspflow.testing.imports import check_imports
from mspflow.testing.strategies import broken_inputs, profile, unbounded_strings, valid_inputs
from mspflow.vendor.transport import mount, unmount

if TYPE_CHECKING:
    from mspflow.app import App
    from mspflow.modules import Action, Module
    from mspflow.runtime import ActionResult
    from mspflow.testing.sim import Simulator

DISCONNECTED = "contract-disconnected"
_ID_LIKE = ("id", "uid", "pk", "Id", "Uid", "ID")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _echo(value: Any, echo: str, key: str = "") -> Any:
    """``value`` with ``echo`` appended to its strings (ids left alone, so later calls still find things)."""
    if isinstance(value, str):
        return value if key.endswith(_ID_LIKE) else f"{value} {echo}"
    if isinstance(value, dict):
        return {k: _echo(v, echo, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_echo(v, echo, key) for v in value]
    return value


class EchoingVendor:
    """A simulator that repeats every credential it was sent in the strings of its answers (as some
    vendors' error pages and debug fields do). :attr:`echoed` is what it repeated."""

    def __init__(self, sim: Simulator, planted: dict[str, str]) -> None:
        from mspflow.redaction import is_secret_key

        self.sim = sim
        self.is_secret_key = is_secret_key
        self.values = {v for value in planted.values() for v in (_json_strings(value) or [value]) if len(v) >= 6}
        self.echoed: set[str] = set()

    def handle(self, request: httpx.Request) -> httpx.Response:
        response = self.sim.handle(request)
        sent = " ".join([str(request.url), *request.headers.values(), request.content.decode(errors="replace")])
        found = {v for v in self.values if v in sent or quote_plus(v) in sent or quote(v, safe="") in sent}
        found |= {value for name, value in request.headers.items()
                  if name.lower() == "authorization" or self.is_secret_key(name)}
        if not found:
            return response
        try:
            body = json.loads(response.read() or b"null")
        except ValueError:
            return response
        if body is None:
            return response
        self.echoed |= found
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length",
                                                                                   "content-encoding")}
        return httpx.Response(response.status_code, headers=headers,
                              content=json.dumps(_echo(body, " ".join(sorted(found)))).encode())

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def _json_strings(value: str) -> list[str]:
    """The secret-named strings inside a JSON secret (``access_token``, not ``instance_url``)."""
    from mspflow.redaction import is_secret_key

    try:
        parsed = json.loads(value)
    except ValueError:
        return []
    found: list[str] = []

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and is_secret_key(key):
            found.append(node)

    walk(parsed, "")
    return found


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Contract:
    """One test's world: the app with the plugin installed, its simulator, a connected tenant."""

    app: App
    module: Module
    sim: Simulator
    vendor: EchoingVendor
    tenant: str
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def action(self, action_id: str) -> Action:
        return next(a for a in self.module.actions if a.id == action_id)

    def call(self, action_id: str, data: Any, tenant: str | None = None) -> ActionResult:
        """Run one call through the runtime, as a workflow step would (``data`` need not be an object)."""
        from mspflow.runtime import ActionCall

        return self.app.runtime.execute(ActionCall(action_id, tenant or self.tenant, data,
                                                   run_id=f"contract-{uuid.uuid4()}", step_path="steps.1"))

    def requests(self) -> int:
        return len(self.sim.requests)

    def some_input(self, action: Action) -> dict[str, Any]:
        """An input the model accepts: a known example, else the simplest instance of the schema."""
        known = self.examples.get(action.id)
        if known:
            return known[0]
        return dict(find(valid_inputs(action.input_schema), lambda v: _accepts(action.input_model, v),
                         settings=profile()))


def _accepts(model: type[BaseModel], value: Any) -> bool:
    try:
        model.model_validate(value)
    except ValidationError:
        return False
    return True


def _refused_by_validation(result: ActionResult) -> bool:
    return result.error is not None and result.error.code == "VALIDATION_ERROR" \
        and result.error.message.startswith("invalid input")


class PluginContract:
    """Subclass it in a plugin's tests and set :attr:`module`; see this module's docstring."""

    module: ClassVar[Module]
    examples: ClassVar[dict[str, dict[str, Any]]] = {}
    tenant: ClassVar[str] = "contract-tenant"
    known_defects: ClassVar[dict[str, str]] = {}
    """``{"test_name[action id]": "why, and where it is being fixed"}``: expected to fail (strictly: once
    fixed, the entry must go). For a plugin adopting the suite with defects it has not fixed yet."""

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "action_id" in metafunc.fixturenames:
            params = []
            for a in self.module.actions:
                why = self.known_defects.get(f"{metafunc.function.__name__}[{a.id}]")
                marks = [pytest.mark.xfail(reason=why, strict=True)] if why else []
                params.append(pytest.param(a.id, id=a.id, marks=marks))
            metafunc.parametrize("action_id", params)

    # -- the world --------------------------------------------------------------------------------------

    def connect(self, app: App, tenant: str, sim: Simulator) -> None:
        """Make the tile available for ``tenant`` (rmm tiles point at the simulator's URL)."""
        from mspflow import tenants

        key = self.module.availability_key or ""
        with app.db.session() as s:
            if key.startswith("rmm:"):
                tenants.connect(s, app.registry, tenant, key[len("rmm:"):], sim.base_url)
            elif key in ("teams", "integration:teams"):
                tenants.connect(s, app.registry, tenant, "teams")
            else:
                pytest.fail(f"the contract suite cannot connect a tenant for availability key {key!r}; "
                            "override PluginContract.connect and disconnect")

    def disconnect(self, app: App, tenant: str, sim: Simulator) -> None:
        """Connect ``tenant``, then disconnect it (its rows stay, inactive)."""
        from mspflow import tenants

        self.connect(app, tenant, sim)
        key = self.module.availability_key or ""
        with app.db.session() as s:
            tenants.disconnect(s, app.registry, tenant, key.split(":", 1)[-1])

    @pytest.fixture
    def contract(self, mspflow_app: App) -> Iterator[Contract]:
        module = self.module
        installed = mspflow_app.registry.modules.get(module.group_key)
        if installed is None or installed.signature() != module.signature():
            pytest.fail(f"{module.group_key} is not what the installed plugins register "
                        f"({'missing' if installed is None else 'a different definition'}): install the "
                        "plugin's distribution (pip install -e .) so its entry point is found")
        if not module.simulator:
            pytest.fail(f"{module.group_key} declares no simulator; pass Module(..., simulator='pkg.sim:Class')")
        mod_name, _, cls_name = module.simulator.partition(":")
        sim: Simulator = getattr(import_module(mod_name), cls_name)()
        planted = sim.demo_secrets()
        vendor = EchoingVendor(sim, planted)
        mount(sim.base_url, vendor.transport())
        try:
            self.connect(mspflow_app, self.tenant, sim)
            self.disconnect(mspflow_app, DISCONNECTED, sim)
            with mspflow_app.db.session() as s:
                for tenant in (self.tenant, DISCONNECTED):
                    for name, value in planted.items():
                        mspflow_app.secrets.set(s, tenant, name, value)
            examples: dict[str, list[dict[str, Any]]] = {}
            for action_id, data in [*sim.demo_calls(), *self.examples.items()]:
                examples.setdefault(action_id, []).append(data)
            yield Contract(mspflow_app, module, sim, vendor, self.tenant, examples)
        finally:
            unmount(sim.base_url)

    # -- definitions ------------------------------------------------------------------------------------

    def test_module_registers_cleanly(self) -> None:
        check_module(self.module)

    def test_action_id_and_module(self, contract: Contract, action_id: str) -> None:
        provider = self.module.provider
        # The core's rule (mspflow.modules.ACTION_ID): `provider.noun.verb`, or `provider.verb_noun` as the
        # builtin `scheduling.create_entry` and the Teams actions the PSA names (`teams.notify_user`).
        assert action_id.split(".")[0] == provider and action_id.count(".") in (1, 2), \
            f"{action_id}: name it '{provider}.<noun>.<verb>' (its tile is {self.module.group_key})"
        assert action_id in self.module.action_ids
        assert contract.app.registry.module_of(action_id) is not None
        assert contract.app.registry.module_of(action_id).group_key == self.module.group_key  # type: ignore[union-attr]

    def test_designer_metadata(self, action_id: str) -> None:
        m, a = self.module, next(a for a in self.module.actions if a.id == action_id)
        missing = [what for what, value in (
            ("module label", m.label), ("module description", m.description), ("module icon", m.icon),
            ("availability key", m.availability_key), ("action label", a.label),
            ("action description (docstring or description=)", a.description), ("action category", a.category),
            ("action icon", a.icon)) if not (value or "").strip()]
        assert not missing, f"{action_id}: the designer needs {', '.join(missing)}"

    def test_schemas_are_json_schema(self, action_id: str) -> None:
        from jsonschema import Draft202012Validator

        a = next(a for a in self.module.actions if a.id == action_id)
        for role, schema in (("input", a.input_schema), ("output", a.output_schema)):
            assert json.loads(json.dumps(schema)) == schema, f"{action_id}: {role} schema is not plain JSON"
            Draft202012Validator.check_schema(schema)
            assert schema.get("type") == "object", f"{action_id}: the {role} model must be an object"

    def test_side_effects_use_engine_idempotency(self, action_id: str) -> None:
        a = next(a for a in self.module.actions if a.id == action_id)
        if a.side_effectful:
            assert a.idempotency == "engine_provided", f"{action_id}: side-effectful without engine idempotency"

    def test_sources_follow_the_import_rule(self) -> None:
        handler = self.module.actions[0].handler
        package = import_module(handler.__module__.split(".")[0])
        check_imports(Path(package.__file__ or "").parent)

    # -- inputs -----------------------------------------------------------------------------------------

    def test_broken_input_is_refused_before_the_vendor(self, contract: Contract, action_id: str) -> None:
        """Refused with VALIDATION_ERROR and no request; or, where pydantic's lax mode turns the value into
        one of the declared type (``0`` into ``false``), accepted as that value, which the schema allows."""
        from jsonschema import Draft202012Validator

        action = contract.action(action_id)
        schema = Draft202012Validator(action.input_schema)

        @profile()
        @given(broken_inputs(action.input_schema))
        def refused(broken: tuple[str, Any]) -> None:
            how, data = broken
            before = contract.requests()
            result = contract.call(action_id, data)
            if _refused_by_validation(result):
                assert contract.requests() == before
                return
            try:
                seen = action.input_model.model_validate(data).model_dump(mode="json")
            except ValidationError:
                seen = None
            reached = contract.requests() - before
            assert seen is not None and schema.is_valid(seen), (
                f"{action_id}: an input with a {how} was not refused with VALIDATION_ERROR but reached the handler "
                f"as {json.dumps(seen, default=str)[:200]}, which the input schema refuses, and the vendor "
                f"({reached} request(s)); declare the constraint on the input model: {result.to_json()}"[:1200])

        refused()

    def test_unknown_fields_never_reach_the_handler(self, action_id: str) -> None:
        action = next(a for a in self.module.actions if a.id == action_id)
        extra = action.input_model.model_config.get("extra")
        assert extra != "allow", (f"{action_id}: its input model allows unknown fields (extra='allow'), so the "
                                  "handler sees what the designer never showed; use the default or 'forbid'")

    def test_strings_are_bounded(self, action_id: str) -> None:
        action = next(a for a in self.module.actions if a.id == action_id)
        unbounded = unbounded_strings(action.input_schema)
        assert not unbounded, (f"{action_id}: {', '.join(unbounded)} accept(s) a string of any length (a 1 MB "
                               "string reaches the handler and the vendor); declare max_length")

    def test_valid_input_is_accepted(self, contract: Contract, action_id: str) -> None:
        action = contract.action(action_id)

        @profile()
        @given(valid_inputs(action.input_schema))
        def accepted(data: Any) -> None:
            result = contract.call(action_id, data)
            assert not _refused_by_validation(result), (
                f"{action_id}: its input schema allows {json.dumps(data)[:300]}, which the model refuses "
                f"({result.error.message if result.error else ''}); the schema must say what the model checks")

        accepted()

    # -- availability -----------------------------------------------------------------------------------

    def test_unavailable_for_a_disconnected_tenant(self, contract: Contract) -> None:
        for tenant in (DISCONNECTED, "contract-never-connected"):
            record = contract.app.catalog(tenant).record(self.module.group_key)
            assert record is not None and not record.available, f"{self.module.group_key} is available to {tenant}"
            assert (record.unavailable_reason or "").strip(), "an unavailable tile must say why"
        assert contract.app.catalog(self.tenant).record(self.module.group_key).available  # type: ignore[union-attr]

    def test_refuses_to_run_for_a_disconnected_tenant(self, contract: Contract, action_id: str) -> None:
        data = contract.some_input(contract.action(action_id))
        before = contract.requests()
        for tenant in (DISCONNECTED, "contract-never-connected"):
            result = contract.call(action_id, data, tenant=tenant)
            assert result.error is not None and result.error.code == "INTEGRATION_INACTIVE", result.to_json()
        assert contract.requests() == before, f"{action_id} reached the vendor for a disconnected tenant"

    # -- secrets ----------------------------------------------------------------------------------------

    def test_echoed_secrets_never_leak(self, contract: Contract, action_id: str) -> None:
        from sqlalchemy import select

        from mspflow.db.models import WorkflowActionInvocation as Inv

        action = contract.action(action_id)
        records = _Records()
        root = logging.getLogger()
        level = root.level
        root.addHandler(records)
        root.setLevel(logging.DEBUG)
        results: list[dict[str, Any]] = []
        try:
            for data in contract.examples.get(action_id, []):
                results.append(contract.call(action_id, data).to_json())

            @profile()
            @given(valid_inputs(action.input_schema))
            def run(data: Any) -> None:
                results.append(contract.call(action_id, data).to_json())

            run()
        finally:
            root.removeHandler(records)
            root.setLevel(level)
        with contract.app.db.session() as s:
            rows = [{c.name: getattr(r, c.name) for c in Inv.__table__.columns}
                    for r in s.execute(select(Inv).where(Inv.tenant == contract.tenant)).scalars()]
        places = {"outputs and errors": json.dumps(results, default=str, ensure_ascii=False),
                  "invocation rows": json.dumps(rows, default=str, ensure_ascii=False),
                  "logs": "\n".join(records.lines)}
        for where, text in places.items():
            leaked = sorted(v for v in contract.vendor.echoed if v in text)
            if leaked:  # pytest.fail, not assert: the report must not print the secret itself
                pytest.fail(f"{action_id}: a secret the vendor echoed appears in the {where} ({len(leaked)} "
                            "value(s)); log only through ctx.logger, raise ActionError, and let the core scrub: "
                            + _context(text, leaked[0]), pytrace=False)


def _context(text: str, secret: str) -> str:
    at = text.index(secret)
    return repr(text[max(0, at - 120):at].replace(secret, "<secret>") + "<secret>")
