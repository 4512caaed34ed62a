"""mspflow-teams: notify a technician in Teams, DM them through the bot, post to a team's channel.

Reads top to bottom: the tile and its availability, the clouds (hosts, token authorities, scopes), the
gate (profile, capability, category), the two clients (Graph activity feed; Bot Framework connector), the
actions, and the receiver that captures the bot's conversation references. Tokens, their cache, the
401 refresh, rate limits, retries, host checks and scrubbing live in the core (:mod:`mspflow.vendor`).

**Set-up a tenant needs** (the host PSA's settings pages write these rows; see the plugin README):

* the ``teams`` add-on (``tenant_addons``) and ``teams_integrations.install_status = 'active'``;
* ``teams_integrations.selected_profile_id`` naming a ``microsoft_profiles`` row (client id, Entra tenant
  id, ``client_secret_ref`` = the tenant secret holding the client secret, cloud, multi-tenant flag);
* ``enabled_capabilities`` (``activity_notifications``, ``bot``) and ``allowed_notification_categories``;
* users linked in ``user_auth_accounts`` (provider ``microsoft``, the Entra object id);
* the bot's messaging endpoint ``https://<host>/hooks/teams/<token>`` (``mspflow tenant webhook T teams``):
  conversation references are stored only from activities whose Bot Framework JWT checks out.

**Safety of ``serviceUrl``.** A reference's ``serviceUrl`` is used only when its host is exactly one of the
cloud's Teams hosts (public: ``smba.trafficmanager.net``, ``smba.onyx.prod.teams.trafficmanager.net``,
``smba.infra.gcc.teams.microsoft.com``), over https; anything else is refused before a token is fetched
or a request leaves. ``*.botframework.com`` is not a Teams host.

**Rate limits** (Microsoft's, declared once): Graph activity feed 5 requests per second per app per tenant;
the bot 7 per second (Teams' per-conversation limit, applied per tenant: the stricter). The connector's
412, 502 and 504 are transient: retried by the engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field, field_validator

from mspflow import (
    ActionContext,
    ActionError,
    ConversationReference,
    Delivery,
    Ignore,
    Module,
    RateLimit,
    Receiver,
    Vendor,
    VendorClient,
    auth,
    hookimpl,
    teams_integration,
    webhook,
)

PROVIDER = "teams"
NOTIFICATIONS, BOT = "activity_notifications", "bot"
Category = Literal["assignment", "customer_reply", "approval_request", "escalation", "sla_risk"]
TEAMS_WEB = "https://teams.microsoft.com"
CARD = "application/vnd.microsoft.card.adaptive"
MAX_CARD_BYTES = 28_000  # Teams refuses messages over about 28 KB

# -- the clouds: hosts, token authorities and scopes --------------------------------------------------------


@dataclass(frozen=True)
class Cloud:
    name: str
    login: str  # token authority host: {login}/{tenant}/oauth2/v2.0/token
    graph: Vendor
    bot: Vendor
    bot_scope: str
    default_service_url: str | None = None  # for a proactive send with no stored serviceUrl

    @property
    def graph_scope(self) -> str:
        return f"{self.graph.base_url}/.default"


def _clouds() -> dict[str, Cloud]:
    graph_limit = RateLimit(5, window_s=1.0)     # activity feed: 5 per second per app per tenant
    bot_limit = RateLimit(7, window_s=1.0)       # per bot per conversation: 7 per second (and 60 per 30 s)
    retry = (412, 502, 504)                      # "back off and retry", as for 429

    def cloud(name: str, login: str, graph: str, service_hosts: tuple[str, ...], scope: str,
              default: str | None = None) -> Cloud:
        login_host = login.removeprefix("https://")
        label = "" if name == "public" else f" ({name})"
        graph_api = Vendor("Microsoft Graph" + label, base_url=graph, auth_hosts=(login_host,),
                           rate_limit=graph_limit)
        connector = Vendor("Teams bot" + label, hosts=service_hosts, auth_hosts=(login_host,), rate_limit=bot_limit,
                           retry_statuses=retry)
        return Cloud(name, login, graph_api, connector, scope, default)

    return {
        "public": cloud("public", "https://login.microsoftonline.com", "https://graph.microsoft.com",
                        ("smba.trafficmanager.net", "smba.onyx.prod.teams.trafficmanager.net",
                         "smba.infra.gcc.teams.microsoft.com"),
                        "https://api.botframework.com/.default", "https://smba.trafficmanager.net/teams"),
        "gcch": cloud("gcch", "https://login.microsoftonline.us", "https://graph.microsoft.us",
                      ("smba.infra.gov.teams.microsoft.us",), "https://api.botframework.us/.default"),
        "dod": cloud("dod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us",
                     ("smba.infra.dod.teams.microsoft.us",), "https://api.botframework.us/.default"),
    }


CLOUDS = _clouds()
PUBLIC = CLOUDS["public"]

teams = Module(
    "app:teams", label="Microsoft Teams", icon="teams",
    description="Notify technicians in their Teams activity feed, message them through the bot, and post to "
                "a team's channel.",
    availability=teams_integration(),
    default_action_id="teams.notify_user",
    vendor=PUBLIC.graph,
    simulator="mspflow_teams.sim:TeamsSimulator",
)

# -- the gate: profile, capability, category -----------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    client_id: str
    entra_tenant_id: str
    secret_ref: str
    multi_tenant: bool
    cloud: Cloud
    endpoints: dict[str, str]
    teams_app_id: str | None
    activity_types: dict[str, str]
    allowed_categories: tuple[str, ...] | None

    def token_url(self, authority: str) -> str:
        login = self.endpoints.get("login") or self.cloud.login
        return f"{login.rstrip('/')}/{quote(authority, safe='')}/oauth2/v2.0/token"

    def graph(self, ctx: ActionContext) -> VendorClient:
        token = auth.oauth2_client_credentials(self.token_url(self.entra_tenant_id), client_id_value=self.client_id,
                                               client_secret=self.secret_ref, scope=self.cloud.graph_scope)
        return ctx.http(self.cloud.graph, auth=token, base_url=self.endpoints.get("graph") or self.cloud.graph.base_url)

    def bot(self, ctx: ActionContext, service_url: str | None) -> VendorClient:
        """The connector at ``service_url``: refused (before any token or request) unless its host is exactly
        one of the cloud's Teams hosts, over https."""
        url = service_url or self.cloud.default_service_url
        if not url:
            raise ActionError.not_found("no Teams service URL is known for this tenant yet; the bot learns it when "
                                        "a user or team installs the app", reason="NO_CONVERSATION")
        # New bots are single-tenant (their own Entra tenant); only a legacy multi-tenant bot asks botframework.com.
        authority = "botframework.com" if self.multi_tenant else self.entra_tenant_id
        token = auth.oauth2_client_credentials(self.token_url(authority), client_id_value=self.client_id,
                                               client_secret=self.secret_ref, scope=self.cloud.bot_scope)
        try:
            return ctx.http(self.cloud.bot, auth=token, base_url=url)
        except ActionError as err:
            if err.details.get("reason") not in ("HOST_NOT_ALLOWED", "INSECURE_URL", "BAD_URL"):
                raise
            raise ActionError.permission_denied(
                f"the stored Teams service URL is not a Microsoft Teams host of the {self.cloud.name} cloud "
                f"({err.message}); nothing was sent. Have the user or team message the bot again so a verified "
                "reference replaces it", reason="SERVICE_URL_NOT_ALLOWED") from None


def setup(ctx: ActionContext, capability: str) -> Setup:
    binding = ctx.microsoft.teams()
    profile = binding.profile if binding is not None else None
    if binding is None or profile is None:
        raise ActionError.inactive(
            "the Teams integration is bound to no Microsoft profile; choose one under Settings > Integrations > "
            "Microsoft Teams (teams_integrations.selected_profile_id)", reason="PROFILE_MISSING")
    if profile.archived:
        raise ActionError.inactive(
            f"the Microsoft profile {profile.display_name!r} bound to Teams is archived; bind an active profile "
            "under Settings > Integrations > Microsoft Teams", reason="PROFILE_MISSING", archived=True)
    if capability not in binding.capabilities:
        what = "activity notifications" if capability == NOTIFICATIONS else "the bot"
        raise ActionError.inactive(
            f"{what} are not enabled for this tenant's Teams integration; enable the {capability!r} capability "
            "under Settings > Integrations > Microsoft Teams", reason="CAPABILITY_DISABLED", capability=capability)
    cloud = CLOUDS.get(profile.cloud)
    if cloud is None:
        raise ActionError.inactive(f"the {profile.cloud!r} cloud is not supported yet; use a public, GCC High or DoD "
                                   "profile", reason="PROFILE_MISSING", cloud=profile.cloud)
    return Setup(profile.client_id, profile.entra_tenant_id, profile.client_secret_ref, profile.bot_multi_tenant,
                 cloud, profile.endpoints, binding.teams_app_id, binding.activity_types, binding.allowed_categories)


def entra_user(ctx: ActionContext, user_id: str) -> str:
    oid = ctx.microsoft.entra_user_id(user_id)
    if not oid:
        raise ActionError.not_found(
            f"user {user_id!r} has no Microsoft account linked; have them sign in with Microsoft once, or link "
            "their Entra account in the user's settings (user_auth_accounts, provider microsoft)",
            reason="USER_NOT_LINKED", user_id=user_id)
    return oid


# -- the Graph client: the activity feed ---------------------------------------------------------------------


def deep_link(s: Setup, link: str | None, title: str) -> str:
    """A Teams deep link for the notification's topic (Graph requires a Teams domain): the link itself when it
    already is one, else the app's stage view of ``link``."""
    if link and link.startswith(TEAMS_WEB + "/"):
        return link
    if s.teams_app_id:
        target = f"{TEAMS_WEB}/l/entity/{quote(s.teams_app_id, safe='')}/mspflow"
        if link:
            context = json.dumps({"subEntityId": link})
            target += f"?webUrl={quote(link, safe='')}&label={quote(title[:60], safe='')}&context={quote(context)}"
        return target
    return TEAMS_WEB + "/"


def notification(s: Setup, title: str, message: str, link: str | None, category: str | None
                 ) -> tuple[str, dict[str, Any]]:
    """``(activity type, body)`` of ``sendActivityNotification``; no ``recipient``: the path names the user."""
    declared = s.activity_types.get(category) if category else None
    body: dict[str, Any] = {"topic": {"source": "text", "value": title, "webUrl": deep_link(s, link, title)},
                            "previewText": {"content": message[:150]}}
    if declared:
        body |= {"activityType": declared, "templateParameters": [
            {"name": "title", "value": title}, {"name": "message", "value": message}]}
    else:
        declared = "systemDefault"
        body |= {"activityType": declared, "templateParameters": [{"name": "systemDefaultText", "value": message}]}
    return declared, body


GRAPH_REFUSALS = {  # status: (error, reason, what to do)
    403: (ActionError.permission_denied, "APP_NOT_INSTALLED",
          "install the mspflow Teams app for this user (personally, or in a team they belong to), and check the "
          "app's manifest webApplicationInfo.id is the profile's client id"),
    409: (ActionError.conflict, "DUPLICATE_APP",
          "more than one Teams app in the user's scope uses this Entra app id; remove the duplicate app (or its "
          "personal copy where it is also installed in a team)"),
}


# -- the Bot Framework connector -----------------------------------------------------------------------------


def activity(text: str, card: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "message", "text": text}
    if card is not None:
        body["attachments"] = [{"contentType": CARD, "content": card}]
    return body


def bot_refusal(err: ActionError, *, channel: bool) -> ActionError:
    """The connector's refusals as errors that say what to do; others as they are."""
    status, code = err.details.get("status"), str(err.details.get("vendor_code") or "")
    if status == 403 and "MessageWritesBlocked" in err.message:
        return ActionError.permission_denied(
            f"{err.message}; the user blocked or removed the bot: ask them to unblock it or reinstall the app",
            **{**err.details, "reason": "BOT_BLOCKED"})
    if status == 403 and channel and (code == "BotNotInConversationRoster" or "roster" in err.message.lower()):
        return ActionError.permission_denied(
            f"{err.message}; the app is not installed in this channel's team: add it to the team in Teams "
            "(Apps > Manage your apps), then post again", **{**err.details, "reason": "APP_NOT_IN_TEAM"})
    if status in (403, 404) and not channel:
        return ActionError.not_found(
            f"{err.message}; the bot has no conversation with this user and cannot start one: install the app for "
            "the user (or have them open the bot once), then send again", **{**err.details,
                                                                            "reason": "NO_CONVERSATION"})
    return err


def conversation_gone(err: ActionError) -> bool:
    return err.details.get("status") == 404 and "not found" in err.message.lower()


# -- the actions ----------------------------------------------------------------------------------------------

UserId = Annotated[str, Field(min_length=1, max_length=64, description="The PSA user's id")]
Text = Annotated[str, Field(min_length=1, max_length=4000)]


class NotifyUserInput(BaseModel):
    user_id: UserId
    title: str = Field(min_length=1, max_length=200, description="The notification's topic")
    message: str = Field(min_length=1, max_length=1000, description="The text shown in the activity feed")
    link: str | None = Field(None, max_length=2000, pattern=r"^https://",
                             description="Where the notification leads (opened in Teams)")
    category: Category | None = Field(None, description="The kind of notification; the tenant may allow only some")


class NotifyUserOutput(BaseModel):
    sent: bool
    activity_type: str = Field(description="The manifest's activity type, or systemDefault")


@teams.action("teams.notify_user", label="Notify user in Teams", side_effectful=True)
def notify_user(params: NotifyUserInput, ctx: ActionContext) -> NotifyUserOutput:
    """Put a notification in the user's Teams activity feed (the Teams app must be installed for them)."""
    s = setup(ctx, NOTIFICATIONS)
    if params.category and s.allowed_categories is not None and params.category not in s.allowed_categories:
        raise ActionError.permission_denied(
            f"{params.category!r} notifications are not allowed for this tenant (allowed: "
            f"{', '.join(s.allowed_categories) or 'none'}); allow the category under Settings > Integrations > "
            "Microsoft Teams, or send another category", reason="CATEGORY_NOT_ALLOWED", category=params.category)
    oid = entra_user(ctx, params.user_id)
    kind, body = notification(s, params.title, params.message, params.link, params.category)
    try:
        s.graph(ctx).post(("v1.0", "users", oid, "teamwork", "sendActivityNotification"), json=body)
    except ActionError as err:
        refusal = GRAPH_REFUSALS.get(err.details.get("status", 0))
        if refusal is None:
            raise
        error, reason, advice = refusal
        raise error(f"{err.message}; {advice}", **{**err.details, "reason": reason}) from None
    return NotifyUserOutput(sent=True, activity_type=kind)


def check_card(card: dict[str, Any] | None) -> dict[str, Any] | None:
    if card is not None and len(json.dumps(card)) > MAX_CARD_BYTES:
        raise ValueError(f"the card is larger than Teams accepts ({MAX_CARD_BYTES} bytes as JSON)")
    return card


class SendDmInput(BaseModel):
    user_id: UserId
    text: Text
    card: dict[str, Any] | None = Field(None, description="An Adaptive Card (JSON) sent with the text")

    _card = field_validator("card")(check_card)


class MessageOutput(BaseModel):
    conversation_id: str
    activity_id: str | None
    created_conversation: bool = False


class SentTo(BaseModel):
    id: str
    activityId: str | None = None


@teams.action("teams.send_dm", label="Message user in Teams", side_effectful=True)
def send_dm(params: SendDmInput, ctx: ActionContext) -> MessageOutput:
    """Message the user in their personal chat with the bot (started by the bot when none is stored)."""
    s = setup(ctx, BOT)
    oid = entra_user(ctx, params.user_id)
    ref = ctx.microsoft.personal_reference(oid)
    body = activity(params.text, params.card)
    if ref is not None:
        http = s.bot(ctx, ref.service_url)
        try:
            sent = http.post(("v3", "conversations", ref.conversation_id, "activities"), json=body, expect=SentTo)
            return MessageOutput(conversation_id=ref.conversation_id, activity_id=sent.id)
        except ActionError as err:
            if not conversation_gone(err):
                raise bot_refusal(err, channel=False) from None
            ctx.microsoft.forget_reference(ref.conversation_id)  # cleared by the user: start it again, once
    http = s.bot(ctx, ref.service_url if ref is not None else None)
    try:
        created = http.post(("v3", "conversations"), json={
            "bot": {"id": f"28:{s.client_id}"}, "members": [{"id": oid}], "isGroup": False,
            "channelData": {"tenant": {"id": s.entra_tenant_id}}, "tenantId": s.entra_tenant_id}, expect=SentTo)
        ctx.microsoft.save_reference(ConversationReference(
            conversation_id=created.id, conversation_type="personal", service_url=http.base_url,
            entra_user_id=oid, entra_tenant_id=s.entra_tenant_id))
        sent = http.post(("v3", "conversations", created.id, "activities"), json=body, expect=SentTo)
    except ActionError as err:
        raise bot_refusal(err, channel=False) from None
    return MessageOutput(conversation_id=created.id, activity_id=sent.id, created_conversation=True)


class PostToChannelInput(BaseModel):
    channel_id: str = Field(max_length=512, pattern=r"^19:[^/\s]+@thread\.(tacv2|skype)$",
                            description="The Teams channel id (19:…@thread.tacv2), not the Graph team id")
    text: Text
    card: dict[str, Any] | None = Field(None, description="An Adaptive Card (JSON) sent with the text")

    _card = field_validator("card")(check_card)


@teams.action("teams.post_to_channel", label="Post to Teams channel", side_effectful=True)
def post_to_channel(params: PostToChannelInput, ctx: ActionContext) -> MessageOutput:
    """Start a new thread in a team's channel (the app must be installed in the team)."""
    s = setup(ctx, BOT)
    ref = ctx.microsoft.channel_reference(params.channel_id)
    http = s.bot(ctx, ref.service_url if ref is not None else None)
    channel_data: dict[str, Any] = {"channel": {"id": params.channel_id}, "tenant": {"id": s.entra_tenant_id}}
    if ref is not None and ref.bot_team_id:
        channel_data["team"] = {"id": ref.bot_team_id}
    try:
        created = http.post(("v3", "conversations"), json={
            "isGroup": True, "bot": {"id": f"28:{s.client_id}"}, "channelData": channel_data,
            "tenantId": s.entra_tenant_id, "activity": activity(params.text, params.card)}, expect=SentTo)
    except ActionError as err:
        raise bot_refusal(err, channel=True) from None
    return MessageOutput(conversation_id=created.id, activity_id=created.activityId, created_conversation=True)


# -- the receiver: conversation references from verified bot activities ----------------------------------------

CAPTURED = ("conversationUpdate", "installationUpdate", "message")


class Account(BaseModel):
    id: str | None = None
    aadObjectId: str | None = None


class Conversation(BaseModel):
    id: str
    conversationType: str | None = None
    tenantId: str | None = None


class BotActivity(BaseModel):
    """The parts of a Bot Framework activity a conversation reference needs."""

    type: str
    serviceUrl: str
    conversation: Conversation
    from_: Account | None = Field(None, alias="from")
    channelData: dict[str, Any] = {}


def parse(delivery: Delivery) -> list[BotActivity]:
    body = delivery.payload
    kind = body.get("type") if isinstance(body, dict) else None
    if kind not in CAPTURED:
        raise Ignore(f"activity type {kind!r} carries no conversation to remember")
    if kind == "installationUpdate" and str(body.get("action", "")).startswith("remove"):
        raise Ignore("the app was uninstalled: nothing new to remember")
    bot = (body.get("recipient") or {}).get("id")
    if kind == "conversationUpdate" and bot and any(m.get("id") == bot for m in body.get("membersRemoved") or []
                                                    if isinstance(m, dict)):
        raise Ignore("the bot was removed from the conversation")
    found = BotActivity.model_validate(body)
    if found.conversation.conversationType not in ("personal", "channel"):
        raise Ignore(f"conversation type {found.conversation.conversationType!r} is not stored")
    return [found]


def _id_of(data: dict[str, Any], key: str, field: str = "id") -> str | None:
    value = data.get(key)
    found = value.get(field) if isinstance(value, dict) else None
    return found if isinstance(found, str) and found else None


def remember(event: BotActivity, ctx: ActionContext) -> None:
    data = event.channelData
    conversation = event.conversation
    tenant = _id_of(data, "tenant") or conversation.tenantId
    if conversation.conversationType == "personal":
        user = event.from_.aadObjectId if event.from_ is not None else None
        if not user:
            raise Ignore("a personal activity without the user's Entra object id")
        ctx.microsoft.save_reference(ConversationReference(
            conversation_id=conversation.id, conversation_type="personal", service_url=event.serviceUrl,
            entra_user_id=user, entra_tenant_id=tenant))
        return
    channel = _id_of(data, "channel") or conversation.id.split(";", 1)[0]
    ctx.microsoft.save_reference(ConversationReference(
        conversation_id=conversation.id.split(";", 1)[0], conversation_type="channel", service_url=event.serviceUrl,
        entra_tenant_id=tenant, bot_team_id=_id_of(data, "team"), graph_team_id=_id_of(data, "team", "aadGroupId"),
        channel_id=channel))


bot_receiver = Receiver(PROVIDER, label="Microsoft Teams bot", verify=webhook.bot_framework(),
                        delivery_id=webhook.json_field("id"), parse=parse, on_event=remember)


@hookimpl
def register_modules(register: Any) -> None:
    register(teams)


@hookimpl
def register_receivers(register: Any) -> None:
    register(bot_receiver)
