"""The three Teams actions against the simulator, and every error a PSA user can act on."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from mspflow_teams.sim import (
    ALICE_OID,
    CAROL_OID,
    CLIENT_ID,
    ENTRA_TENANT,
    OTHER_CHANNEL,
    SERVICE_DESK,
    TEAM_THREAD,
    TEAMS_APP_ID,
)
from teams_support import Teams

AMER = "https://smba.trafficmanager.net/amer"
NOTE = {"user_id": "tech-alice", "title": "Ticket #4521", "message": "You were assigned ticket #4521",
        "link": "https://psa.example/tickets/4521", "category": "assignment"}


def personal(teams: Teams, oid: str = ALICE_OID, conversation: str = "a:stored-alice", url: str = AMER) -> None:
    teams.add_reference(conversation_id=conversation, conversation_type="personal", service_url=url,
                        entra_user_id=oid, entra_tenant_id=ENTRA_TENANT)
    teams.sim.conversations[conversation] = oid


def channel(teams: Teams, channel_id: str = SERVICE_DESK, url: str = AMER) -> None:
    teams.add_reference(conversation_id=channel_id, conversation_type="channel", service_url=url,
                        entra_tenant_id=ENTRA_TENANT, bot_team_id=TEAM_THREAD, channel_id=channel_id)


# -- teams.notify_user ----------------------------------------------------------------------------------------


def test_notify_user_puts_free_text_in_the_activity_feed(teams: Teams) -> None:
    assert teams.ok("notify_user", NOTE) == {"sent": True, "activity_type": "systemDefault"}
    [body] = teams.sim.notifications[ALICE_OID]
    assert "recipient" not in body
    assert body["activityType"] == "systemDefault"
    assert body["templateParameters"] == [{"name": "systemDefaultText", "value": NOTE["message"]}]
    assert body["topic"]["value"] == "Ticket #4521"
    web_url = body["topic"]["webUrl"]
    assert web_url.startswith(f"https://teams.microsoft.com/l/entity/{TEAMS_APP_ID}/")
    assert "webUrl=" + "https%3A%2F%2Fpsa.example%2Ftickets%2F4521" in web_url
    assert teams.sent("POST")[-1] == ("POST", f"/v1.0/users/{ALICE_OID}/teamwork/sendActivityNotification")
    # app-only Graph token from the profile's own Entra tenant
    assert teams.sim.tokens == [(ENTRA_TENANT, "https://graph.microsoft.com/.default")]


def test_a_category_maps_to_the_activity_type_the_app_declares(teams: Teams) -> None:
    teams.configure(activity_types={"assignment": "ticketAssigned"})
    assert teams.ok("notify_user", NOTE)["activity_type"] == "ticketAssigned"
    body = teams.sim.notifications[ALICE_OID][0]
    assert body["templateParameters"] == [{"name": "title", "value": NOTE["title"]},
                                          {"name": "message", "value": NOTE["message"]}]


def test_a_teams_link_is_used_as_the_topic_as_it_is(teams: Teams) -> None:
    link = "https://teams.microsoft.com/l/message/19:abc@thread.tacv2/1700000000"
    teams.ok("notify_user", {**NOTE, "link": link})
    assert teams.sim.notifications[ALICE_OID][0]["topic"]["webUrl"] == link


def test_a_category_the_tenant_does_not_allow_is_refused_before_graph(teams: Teams) -> None:
    teams.configure(categories=["escalation", "sla_risk"])
    err = teams.fail("notify_user", NOTE)
    assert (err.code, err.details["reason"]) == ("PERMISSION_DENIED", "CATEGORY_NOT_ALLOWED")
    assert "allow the category" in err.message
    assert teams.sim.requests == []
    assert teams.ok("notify_user", {**NOTE, "category": "escalation"})["sent"] is True


def test_a_user_without_a_microsoft_link(teams: Teams) -> None:
    err = teams.fail("notify_user", {**NOTE, "user_id": "tech-nobody"})
    assert (err.code, err.details["reason"]) == ("NOT_FOUND", "USER_NOT_LINKED")
    assert "link" in err.message and teams.sim.requests == []


def test_graph_refuses_a_user_without_the_app(teams: Teams) -> None:
    err = teams.fail("notify_user", {**NOTE, "user_id": "tech-bob"})
    assert (err.code, err.details["reason"]) == ("PERMISSION_DENIED", "APP_NOT_INSTALLED")
    assert "install the mspflow Teams app" in err.message


def test_a_duplicated_app_is_a_conflict(teams: Teams) -> None:
    err = teams.fail("notify_user", {**NOTE, "user_id": "tech-dave"})
    assert (err.code, err.details["reason"], err.details["status"]) == ("CONFLICT", "DUPLICATE_APP", 409)
    assert "remove the duplicate" in err.message


def test_a_throttled_notification_waits_for_retry_after_and_is_sent_once(teams: Teams) -> None:
    teams.ok("notify_user", NOTE)  # the token is cached: the next request is the notification itself
    teams.sim.faults.rate_limit_next, teams.sim.faults.retry_after_s = 1, 1
    assert teams.ok("notify_user", NOTE)["sent"] is True
    assert len(teams.sim.notifications[ALICE_OID]) == 2
    assert [r.url.path for r in teams.sim.requests].count(
        f"/v1.0/users/{ALICE_OID}/teamwork/sendActivityNotification") == 3  # one refused with 429


@pytest.mark.parametrize("capability, action, data", [
    ("activity_notifications", "notify_user", NOTE),
    ("bot", "send_dm", {"user_id": "tech-alice", "text": "hi"}),
    ("bot", "post_to_channel", {"channel_id": SERVICE_DESK, "text": "hi"}),
])
def test_a_disabled_capability(teams: Teams, capability: str, action: str, data: dict[str, str]) -> None:
    others = tuple(c for c in ("activity_notifications", "bot") if c != capability)
    teams.configure(capabilities=others)
    err = teams.fail(action, data)
    assert (err.code, err.details["reason"]) == ("INTEGRATION_INACTIVE", "CAPABILITY_DISABLED")
    assert "enable" in err.message and teams.sim.requests == []


def test_no_profile_or_an_archived_one(app: object, teams: Teams) -> None:
    teams.configure(archived=True)
    err = teams.fail("notify_user", NOTE)
    assert (err.code, err.details["reason"], err.details["archived"]) == ("INTEGRATION_INACTIVE", "PROFILE_MISSING",
                                                                         True)
    teams.configure(tenant="globex", profile=False)
    err = teams.fail("notify_user", NOTE, tenant="globex")
    assert (err.code, err.details["reason"]) == ("INTEGRATION_INACTIVE", "PROFILE_MISSING")
    assert "bind" in err.message.lower() or "choose" in err.message.lower()
    assert teams.sim.requests == []


# -- teams.send_dm --------------------------------------------------------------------------------------------


def test_a_dm_goes_into_the_stored_personal_conversation(teams: Teams) -> None:
    personal(teams)
    card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "P1"}]}
    out = teams.ok("send_dm", {"user_id": "tech-alice", "text": "Ticket #4521 is yours", "card": card})
    assert out["conversation_id"] == "a:stored-alice" and out["created_conversation"] is False
    [sent] = teams.sim.dms[ALICE_OID]
    assert sent == {"type": "message", "text": "Ticket #4521 is yours",
                    "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}
    assert teams.sent("POST")[-1] == ("POST", "/amer/v3/conversations/a%3Astored-alice/activities")
    # the bot's token: single-tenant authority, Bot Framework scope
    assert teams.sim.tokens == [(ENTRA_TENANT, "https://api.botframework.com/.default")]


def test_without_a_stored_conversation_the_bot_starts_one_by_entra_object_id(teams: Teams) -> None:
    out = teams.ok("send_dm", {"user_id": "tech-alice", "text": "hello"})
    assert out["created_conversation"] is True
    create = next(r for r in teams.sim.requests if r.url.path.endswith("/v3/conversations"))
    body = teams.sim.body(create)
    assert body["members"] == [{"id": ALICE_OID}] and body["tenantId"] == ENTRA_TENANT
    assert body["bot"] == {"id": f"28:{CLIENT_ID}"} and body["channelData"] == {"tenant": {"id": ENTRA_TENANT}}
    assert str(create.url).startswith("https://smba.trafficmanager.net/teams/")
    assert teams.sim.dms[ALICE_OID] == [{"type": "message", "text": "hello"}]
    [ref] = teams.references()
    assert (ref["conversation_id"], ref["entra_user_id"]) == (out["conversation_id"], ALICE_OID)
    again = teams.ok("send_dm", {"user_id": "tech-alice", "text": "again"})
    assert again["conversation_id"] == out["conversation_id"] and again["created_conversation"] is False


def test_a_conversation_the_user_cleared_is_started_again_once(teams: Teams) -> None:
    personal(teams)
    teams.sim.clear_chat(ALICE_OID)
    out = teams.ok("send_dm", {"user_id": "tech-alice", "text": "still there?"})
    assert out["created_conversation"] is True and out["conversation_id"] != "a:stored-alice"
    assert teams.sim.dms[ALICE_OID] == [{"type": "message", "text": "still there?"}]
    assert [r["conversation_id"] for r in teams.references()] == [out["conversation_id"]]
    assert sum(1 for r in teams.sim.requests if r.url.path == "/amer/v3/conversations") == 1


def test_a_user_who_blocked_the_bot(teams: Teams) -> None:
    personal(teams, CAROL_OID, "a:stored-carol")
    err = teams.fail("send_dm", {"user_id": "tech-carol", "text": "hi"})
    assert (err.code, err.details["reason"]) == ("PERMISSION_DENIED", "BOT_BLOCKED")
    assert "unblock" in err.message


def test_a_user_without_the_app_has_no_conversation(teams: Teams) -> None:
    err = teams.fail("send_dm", {"user_id": "tech-bob", "text": "hi"})
    assert (err.code, err.details["reason"]) == ("NOT_FOUND", "NO_CONVERSATION")
    assert "install the app" in err.message


def test_a_foreign_service_url_is_refused_before_any_request_or_token(teams: Teams) -> None:
    for url in ("https://attacker.trafficmanager.net/amer", "https://smba.botframework.com/amer",
                "http://smba.trafficmanager.net/amer"):
        personal(teams, conversation=f"a:{url}", url=url)
        err = teams.fail("send_dm", {"user_id": "tech-alice", "text": "hi"})
        assert (err.code, err.details["reason"]) == ("PERMISSION_DENIED", "SERVICE_URL_NOT_ALLOWED"), url
        with teams.app.db.session() as s:
            from mspflow.db.models import TeamsConversationReference as R

            s.query(R).delete()
    assert teams.sim.requests == [] and teams.sim.tokens == []


@pytest.mark.parametrize("status", [412, 502, 504])
def test_connector_asks_for_a_retry(teams: Teams, status: int) -> None:
    personal(teams)
    teams.sim.connector_fail_next = [status]
    err = teams.fail("send_dm", {"user_id": "tech-alice", "text": "hi"})
    assert (err.code, err.retryable, err.details["reason"]) == ("TRANSIENT_FAILURE", True, "VENDOR_RETRY_STATUS")
    assert teams.ok("send_dm", {"user_id": "tech-alice", "text": "hi"})["conversation_id"] == "a:stored-alice"
    assert len(teams.sim.dms[ALICE_OID]) == 1


def test_a_legacy_multi_tenant_bot_asks_the_botframework_authority(teams: Teams) -> None:
    from mspflow.db.models import MicrosoftProfile

    with teams.app.db.session() as s:
        p = s.get(MicrosoftProfile, ("acme", "p1"))
        assert p is not None
        p.bot_multi_tenant = True
    teams.sim.multi_tenant = True
    teams.ok("post_to_channel", {"channel_id": SERVICE_DESK, "text": "hi"})
    assert teams.sim.tokens == [("botframework.com", "https://api.botframework.com/.default")]


# -- teams.post_to_channel ------------------------------------------------------------------------------------


def test_post_to_channel_starts_a_thread_and_a_replay_posts_nothing(teams: Teams) -> None:
    channel(teams)
    call = {"run_id": "run-1", "step_path": "steps.post"}
    first = teams.run("post_to_channel", {"channel_id": SERVICE_DESK, "text": "P1: mail server down"}, **call)
    assert first.ok and first.output is not None
    assert first.output["conversation_id"].startswith(SERVICE_DESK + ";messageid=")
    create = next(r for r in teams.sim.requests if r.url.path == "/amer/v3/conversations")
    body = teams.sim.body(create)
    assert body["isGroup"] is True and body["activity"] == {"type": "message", "text": "P1: mail server down"}
    assert body["channelData"] == {"channel": {"id": SERVICE_DESK}, "tenant": {"id": ENTRA_TENANT},
                                   "team": {"id": TEAM_THREAD}}
    again = teams.run("post_to_channel", {"channel_id": SERVICE_DESK, "text": "P1: mail server down"}, **call)
    assert again.replayed and again.output == first.output
    assert teams.sim.channels[SERVICE_DESK]["messages"] == [{"type": "message", "text": "P1: mail server down"}]


def test_a_channel_whose_team_lacks_the_bot(teams: Teams) -> None:
    err = teams.fail("post_to_channel", {"channel_id": OTHER_CHANNEL, "text": "hi"})
    assert (err.code, err.details["reason"]) == ("PERMISSION_DENIED", "APP_NOT_IN_TEAM")
    assert "add it to the team" in err.message
    assert teams.sim.channels[OTHER_CHANNEL]["messages"] == []


def test_a_graph_team_guid_is_not_a_channel_id(teams: Teams) -> None:
    err = teams.fail("post_to_channel", {"channel_id": "8d1f2c3b-0000-4000-8000-00000000aa01", "text": "hi"})
    assert err.code == "VALIDATION_ERROR" and teams.sim.requests == []


def test_secrets_never_reach_outputs_or_records(teams: Teams) -> None:
    teams.ok("notify_user", NOTE)
    record = teams.app.invocation(teams.run("notify_user", NOTE).invocation_id)  # type: ignore[arg-type]
    assert teams.sim.client_secret not in str(record)
    assert all(unquote(str(t)) not in str(record) for t in teams.sim._issued)


# -- declared rate limits, enforced by the rails ------------------------------------------------------------


def test_microsofts_limits_are_declared() -> None:
    from mspflow_teams import CLOUDS

    from mspflow import RateLimit

    for cloud in CLOUDS.values():
        assert cloud.graph.rate_limit == RateLimit(5, window_s=1.0)   # activity feed, per app per tenant
        assert cloud.bot.rate_limit == RateLimit(7, window_s=1.0)     # per bot per conversation
        assert cloud.bot.retry_statuses == (412, 502, 504)
        assert not any(h.endswith("botframework.com") for h in cloud.bot.allowed_hosts)


def test_the_graph_limit_holds_before_graph_is_asked(teams: Teams, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSPFLOW_RATE_LIMITS", "Microsoft Graph=1/60")  # an operator's stricter budget
    teams.ok("notify_user", NOTE)
    err = teams.fail("notify_user", NOTE)
    assert (err.code, err.details["reason"]) == ("RATE_LIMITED", "LOCAL_RATE_LIMIT") and err.retryable
    assert len(teams.sim.notifications[ALICE_OID]) == 1


def test_a_revoked_token_is_dropped_and_fetched_again_once(teams: Teams) -> None:
    teams.ok("notify_user", NOTE)
    teams.sim._issued.clear()  # Entra revoked it: the next call gets 401
    assert teams.ok("notify_user", NOTE)["sent"] is True
    assert len(teams.sim.tokens) == 2 and len(teams.sim.notifications[ALICE_OID]) == 2
