"""Safety rules: unknown tools, never_small, function not offered, changed schemas."""

from __future__ import annotations

from odia_stream.routing import Reason, SafetyRules, ToolCatalog, schema_fingerprint
from schemas import ServeRequest, ToolSpec

from shop_app import TOOLS, tool

CATALOG = ToolCatalog.from_tools([("shop", TOOLS)])


def _request(tools: list[ToolSpec] = TOOLS, app: str = "shop") -> ServeRequest:
    return ServeRequest(request_id="r", app=app, query="pay 5 dollars to Bob", tools=tools)


def test_unknown_app_no_tools_and_unseen_tool_sets_go_large() -> None:
    rules = SafetyRules(CATALOG, check_tool_sets=True)
    assert rules.precheck(_request()) is None
    assert rules.precheck(_request(app="other")) is Reason.UNKNOWN_TOOLS
    assert rules.precheck(_request(tools=[])) is Reason.UNKNOWN_TOOLS
    assert rules.precheck(_request(tools=TOOLS[:2])) is Reason.UNKNOWN_TOOLS
    # Without tool sets in the scope, another offered subset is fine.
    assert SafetyRules(CATALOG, check_tool_sets=False).precheck(_request(tools=TOOLS[:2])) is None


def test_never_small_overrides_everything_else() -> None:
    rules = SafetyRules(CATALOG, never_small=frozenset({"pay"}))
    assert rules.check("pay", _request()) is Reason.NEVER_SMALL
    assert rules.check("get_weather", _request()) is None


def test_a_function_that_is_not_offered_goes_large() -> None:
    rules = SafetyRules(CATALOG)
    assert rules.check("pay", _request(tools=TOOLS[:2])) is Reason.FUNCTION_NOT_OFFERED


def test_a_changed_schema_is_an_unknown_tool() -> None:
    changed = [tool("pay", amount="number", payee="string", currency="string"), *TOOLS[:2]]
    reworded = [t.model_copy(update={"function": t.function.model_copy(update={"description": "new words"})}) for t in TOOLS]
    rules = SafetyRules(CATALOG)
    assert rules.check("pay", _request(tools=changed)) is Reason.UNKNOWN_TOOLS
    assert rules.check("pay", _request(tools=reworded)) is None
    assert schema_fingerprint(TOOLS[2].function) != schema_fingerprint(changed[0].function)


def test_the_catalog_round_trips_through_json() -> None:
    assert ToolCatalog.from_json(CATALOG.to_json()) == CATALOG
    assert set(CATALOG.schemas["shop"]) == {t.name for t in TOOLS}
