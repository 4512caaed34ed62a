"""Microsoft Teams sandbox: token endpoints, OpenID metadata, Graph's activity feed, the bot connector.

It answers, from in-memory state and as the fact sheet says Microsoft does (``shared/vendor-apis.md`` §5),
every host mspflow-teams talks to (paths do not overlap, so one simulator serves them all):

* ``POST /{tenant}/oauth2/v2.0/token`` (client credentials, both the single-tenant authority and the
  legacy ``botframework.com`` one, which refuses a single-tenant bot with AADSTS700016);
* ``GET /v1/.well-known/openidconfiguration`` and ``/v1/.well-known/keys`` (the Bot Framework's signing keys);
* ``POST /v1.0/users/{id}/teamwork/sendActivityNotification``: 204; 400 for a ``recipient`` field or a
  ``webUrl`` off the Teams domain; 403 for a user without the app; 409 for a duplicated app; 429 (with
  ``Retry-After``) through :attr:`faults`;
* ``POST [/{region}]/v3/conversations`` and ``…/{id}/activities``: 403 ``BotNotInConversationRoster`` for a
  team without the bot or a user without the app, 403 ``MessageWritesBlocked`` for a user who blocked the
  bot, 404 "conversation not found" for a conversation the user cleared (:meth:`clear_chat`);
* ``POST /_sim/send_activity`` ``{"endpoint", "service_url", "team"}``: a signed install activity sent to the
  bot's endpoint, for ``mspflow sim serve teams`` (point the profile's ``endpoints.openid`` at the simulator).

:meth:`signed_activity` signs a bot activity as the Bot Framework does, so a test (or an operator, through
:meth:`send_activity`) can deliver it to ``mspflow serve``'s ``/hooks/teams/{token}``. What each user and
channel received is in :attr:`notifications`, :attr:`dms` and :attr:`channels` (and ``GET /_sim/state``).

Examples::

    sim = TeamsSimulator()
    for url in sim.hosts():
        mspflow.testing.mount(url, sim.transport())
    ...
    assert sim.notifications[ALICE_OID][0]["activityType"] == "systemDefault"
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import httpx

from mspflow.testing.sim import Simulator
from mspflow.testing.tokens import SigningKey

ENDORSED = ("msteams", "webchat", "directline")  # channels the Bot Framework endorses its keys for
CLIENT_ID = "5c0ffee0-0000-4000-8000-00000000b075"
CLIENT_SECRET = "sim-teams-client-secret-0123456789abcdef"
ENTRA_TENANT = "72f988bf-0000-4000-8000-0000000c0de5"
TEAMS_APP_ID = "0f1e2d3c-0000-4000-8000-0000000a9901"
ALICE_OID = "a11ce000-0000-4000-8000-000000000001"   # app installed
BOB_OID = "b0b00000-0000-4000-8000-000000000002"     # app not installed
CAROL_OID = "ca401000-0000-4000-8000-000000000003"   # blocked the bot
DAVE_OID = "da7e0000-0000-4000-8000-000000000004"    # app installed twice (409 on notifications)
TEAM_THREAD = "19:servicedeskteam0001@thread.tacv2"  # Bot Framework's team id (the General channel)
GRAPH_TEAM_ID = "8d1f2c3b-0000-4000-8000-00000000aa01"
SERVICE_DESK = "19:servicedesk0002@thread.tacv2"     # the bot is installed in its team
OTHER_CHANNEL = "19:othersteam0003@thread.tacv2"     # a team without the bot
ISSUER = "https://api.botframework.com"
DEMO_ON_CALL = "demo-tech-ada"  # mspflow demo's on-call technician (core/mspflow/demo.py)
PUBLIC_HOSTS = ("https://graph.microsoft.com", "https://login.microsoftonline.com", "https://login.botframework.com",
                "https://smba.trafficmanager.net", "https://smba.trafficmanager.net/amer",
                "https://smba.trafficmanager.net/teams")
NOT_INSTALLED = ("Application with AAD App Id '{app}' is not authorized to generate custom text notifications for "
                 "the user. Ensure that the expected Teams app is installed in the target scope (user, team, or chat)")


class TeamsSimulator(Simulator):
    """In-memory Microsoft: one app registration, four users, two teams. State is public for tests.

    :ivar users: Entra object id → ``{"app": bool, "blocked": bool, "duplicate": bool}``.
    :ivar channels: channel id → ``{"bot": bool, "messages": [activity, ...]}``.
    :ivar notifications: Entra object id → the notification bodies it received.
    :ivar dms: Entra object id → the activities the bot wrote in their personal chat.
    :ivar tokens: ``(authority, scope)`` of every token issued, in order.
    """

    vendor = "Microsoft Teams"
    base_url = "https://graph.microsoft.com"
    client_id = CLIENT_ID
    client_secret = CLIENT_SECRET
    multi_tenant = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = SigningKey("sim-bf-key-1", endorsements=ENDORSED)
        self.users: dict[str, dict[str, bool]] = {
            ALICE_OID: {"app": True, "blocked": False, "duplicate": False},
            BOB_OID: {"app": False, "blocked": False, "duplicate": False},
            CAROL_OID: {"app": True, "blocked": True, "duplicate": False},
            DAVE_OID: {"app": True, "blocked": False, "duplicate": True},
        }
        self.channels: dict[str, dict[str, Any]] = {SERVICE_DESK: {"bot": True, "messages": []},
                                                    TEAM_THREAD: {"bot": True, "messages": []},
                                                    OTHER_CHANNEL: {"bot": False, "messages": []}}
        self.notifications: dict[str, list[dict[str, Any]]] = {}
        self.dms: dict[str, list[dict[str, Any]]] = {}
        self.conversations: dict[str, str] = {}  # personal conversation id → Entra object id
        self.tokens: list[tuple[str, str]] = []
        self.connector_fail_next: list[int] = []  # statuses the connector answers next (412, 502, 504, ...)
        self._issued: dict[str, str] = {}  # access token → scope
        self._state = threading.RLock()
        self.add_routes([
            ("POST", "/{authority}/oauth2/v2.0/token", self._token),
            ("GET", "/v1/.well-known/openidconfiguration", self._openid),
            ("GET", "/v1/.well-known/keys", self._keys),
            ("POST", "/v1.0/users/{user}/teamwork/sendActivityNotification", self._notify),
            ("POST", "/v3/conversations", self._create),
            ("POST", "/{region}/v3/conversations", self._create),
            ("POST", "/v3/conversations/{conversation}/activities", self._send),
            ("POST", "/{region}/v3/conversations/{conversation}/activities", self._send),
            ("GET", "/_sim/state", self._show),
        ])

    @staticmethod
    def hosts() -> tuple[str, ...]:
        """The public-cloud base URLs to mount this simulator at, in-process."""
        return PUBLIC_HOSTS

    # -- errors in Microsoft's shapes ---------------------------------------------------------------------

    def error(self, status: int, message: str, **extra: Any) -> httpx.Response:
        code = extra.pop("code", {401: "InvalidAuthenticationToken", 404: "NotFound", 429: "TooManyRequests",
                                  503: "ServiceUnavailable"}.get(status, "BadRequest"))
        return self.json({"error": {"code": code, "message": message, **extra}}, status)

    def _bearer(self, request: httpx.Request, scope: str) -> httpx.Response | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self._issued.get(token) != scope:
            return self.error(401, "Access token is missing, invalid, or for another audience")
        return None

    # -- tokens and signing keys --------------------------------------------------------------------------

    def _token(self, request: httpx.Request, authority: str) -> httpx.Response:
        form = self.body(request) or {}
        if form.get("grant_type") != "client_credentials" or form.get("client_id") != self.client_id \
                or form.get("client_secret") != self.client_secret:
            return self.json({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client "
                              "secret provided."}, 401)
        if authority == "botframework.com" and not self.multi_tenant:
            return self.json({"error": "unauthorized_client", "error_description": "AADSTS700016: Application "
                              f"with identifier '{self.client_id}' was not found in the directory 'Bot Framework'"},
                             400)
        if authority not in (ENTRA_TENANT, "botframework.com"):
            return self.json({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found"}, 400)
        scope = str(form.get("scope", ""))
        token = f"sim-at-{uuid.uuid4().hex}"
        with self._state:
            self._issued[token] = scope
            self.tokens.append((authority, scope))
        return self.json({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})

    def _openid(self, request: httpx.Request) -> httpx.Response:
        origin = f"{request.url.scheme}://{request.url.netloc.decode()}"
        return self.json({"issuer": ISSUER, "jwks_uri": f"{origin}/v1/.well-known/keys",
                          "id_token_signing_alg_values_supported": ["RS256"]})

    def _keys(self, request: httpx.Request) -> httpx.Response:
        return self.json({"keys": [self.key.jwk()]})

    # -- Graph: the activity feed -------------------------------------------------------------------------

    def _notify(self, request: httpx.Request, user: str) -> httpx.Response:
        denied = self._bearer(request, "https://graph.microsoft.com/.default")
        if denied is not None:
            return denied
        body = self.body(request)
        if not isinstance(body, dict) or "recipient" in body:
            return self.error(400, "Invalid request: 'recipient' is not a parameter of this action")
        topic = body.get("topic") or {}
        if not str(topic.get("webUrl", "")).startswith("https://teams.microsoft.com/"):
            return self.error(400, "Topic webUrl must be a Microsoft Teams domain URL")
        state = self.users.get(user)
        if state is None:
            return self.error(404, f"User '{user}' was not found", code="Request_ResourceNotFound")
        if not state["app"]:
            return self.error(403, NOT_INSTALLED.format(app=self.client_id), code="Forbidden")
        if state["duplicate"]:
            return self.error(409, "Found multiple Teams apps with the same AAD App Id in the target scope",
                              code="Conflict")
        with self._state:
            self.notifications.setdefault(user, []).append(body)
        return self.empty(204)

    # -- the bot connector --------------------------------------------------------------------------------

    def _bot(self, request: httpx.Request) -> httpx.Response | None:
        denied = self._bearer(request, "https://api.botframework.com/.default")
        if denied is None and self.connector_fail_next:
            status = self.connector_fail_next.pop(0)
            return self.error(status, "The service is temporarily unavailable; retry", code="ServiceError")
        return denied

    def _create(self, request: httpx.Request, region: str = "") -> httpx.Response:
        denied = self._bot(request)
        if denied is not None:
            return denied
        body = self.body(request)
        if not isinstance(body, dict) or body.get("bot", {}).get("id") != f"28:{self.client_id}":
            return self.error(400, "Invalid bot", code="BadArgument")
        data = body.get("channelData") or {}
        if body.get("isGroup"):
            channel = (data.get("channel") or {}).get("id")
            state = self.channels.get(channel)
            if state is None or not state["bot"]:
                return self.error(403, "The bot is not part of the conversation roster.",
                                  code="BotNotInConversationRoster")
            message = body.get("activity") or {}
            with self._state:
                state["messages"].append(message)
                number = len(state["messages"])
            return self.json({"id": f"{channel};messageid={number}", "activityId": str(number)}, 201)
        members = body.get("members") or []
        if len(members) != 1 or "aadObjectId" in members[0]:
            return self.error(400, "Invalid members", code="BadArgument")
        user = self.users.get(members[0].get("id"))
        if user is None or not user["app"]:
            return self.error(403, "The bot is not part of the conversation roster.",
                              code="BotNotInConversationRoster")
        if user["blocked"]:
            return self._blocked()
        conversation = f"a:{uuid.uuid4().hex}"
        with self._state:
            self.conversations[conversation] = members[0]["id"]
        return self.json({"id": conversation}, 201)

    def _blocked(self) -> httpx.Response:
        return self.json({"errorCode": 209, "message": json.dumps(
            {"subCode": "MessageWritesBlocked", "details": "Thread is blocked for messages from this bot"})}, 403)

    def _send(self, request: httpx.Request, conversation: str, region: str = "") -> httpx.Response:
        denied = self._bot(request)
        if denied is not None:
            return denied
        user = self.conversations.get(conversation)
        if user is None:
            return self.error(404, "Conversation not found.", code="ConversationNotFound")
        if self.users[user]["blocked"]:
            return self._blocked()
        body = self.body(request)
        with self._state:
            self.dms.setdefault(user, []).append(body)
            number = len(self.dms[user])
        return self.json({"id": f"{int(time.time() * 1000)}{number}"}, 201)

    def clear_chat(self, entra_user_id: str) -> None:
        """The user removed the chat history: the bot's stored conversation id is gone."""
        with self._state:
            for conversation, user in list(self.conversations.items()):
                if user == entra_user_id:
                    del self.conversations[conversation]

    def _show(self, request: httpx.Request) -> httpx.Response:
        return self.json({"notifications": self.notifications, "dms": self.dms,
                          "channels": {k: v["messages"] for k, v in self.channels.items()}})

    # -- the Bot Framework's side: signed activities to the bot's endpoint -----------------------------------

    def signed_activity(self, activity: dict[str, Any], *, audience: str | None = None, key: SigningKey | None = None,
                        expires_in: float = 3600, service_url: str | None = None) -> str:
        """The ``Authorization`` value the Bot Framework sends with ``activity``: a JWT from its issuer, for the
        bot (``audience``, default the app id), with the ``serviceurl`` claim (default the activity's)."""
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": audience or self.client_id, "nbf": now - 5, "iat": now - 5,
                  "exp": now + int(expires_in), "serviceurl": service_url or activity.get("serviceUrl")}
        return "Bearer " + (key or self.key).sign(claims)

    def send_activity(self, endpoint: str, activity: dict[str, Any], **sign: Any) -> httpx.Response:
        """POST ``activity`` to the bot's messaging ``endpoint`` (``…/hooks/teams/<token>``), signed."""
        return httpx.post(endpoint, json=activity, headers={"Authorization": self.signed_activity(activity, **sign)},
                          timeout=30)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/_sim/send_activity":
            return self._deliver(request)  # outside the simulator's lock: the bot fetches our keys meanwhile
        return super().handle(request)

    def _deliver(self, request: httpx.Request) -> httpx.Response:
        """``POST /_sim/send_activity`` ``{"endpoint", "service_url", "team": bool, "user"?}``: the Bot Framework
        sends an install activity, signed, to the bot's endpoint (``mspflow serve``); answers with its reply."""
        order = self.body(request) or {}
        activity = self.install_activity(str(order.get("service_url") or f"{request.url.scheme}://"
                                             f"{request.url.netloc.decode()}/amer/"),
                                         team=bool(order.get("team", True)), user=str(order.get("user", ALICE_OID)))
        answer = self.send_activity(str(order["endpoint"]), activity)
        return self.json({"status": answer.status_code, "body": answer.text, "activity": activity})

    @staticmethod
    def install_activity(service_url: str, *, team: bool = True, user: str = ALICE_OID) -> dict[str, Any]:
        """The activity Teams sends when the app is added to a team (``team``) or for a user personally."""
        if team:
            return {"type": "conversationUpdate", "id": f"f:{uuid.uuid4().hex}", "serviceUrl": service_url,
                    "channelId": "msteams", "from": {"id": "29:installer", "aadObjectId": user},
                    "recipient": {"id": f"28:{CLIENT_ID}"},
                    "conversation": {"id": SERVICE_DESK, "conversationType": "channel", "tenantId": ENTRA_TENANT,
                                     "isGroup": True},
                    "channelData": {"eventType": "teamMemberAdded", "tenant": {"id": ENTRA_TENANT},
                                    "team": {"id": TEAM_THREAD, "aadGroupId": GRAPH_TEAM_ID},
                                    "channel": {"id": SERVICE_DESK}},
                    "membersAdded": [{"id": f"28:{CLIENT_ID}"}]}
        return {"type": "installationUpdate", "action": "add", "id": f"f:{uuid.uuid4().hex}",
                "serviceUrl": service_url, "channelId": "msteams",
                "from": {"id": f"29:{user}", "aadObjectId": user}, "recipient": {"id": f"28:{CLIENT_ID}"},
                "conversation": {"id": f"a:personal-{user}", "conversationType": "personal",
                                 "tenantId": ENTRA_TENANT},
                "channelData": {"tenant": {"id": ENTRA_TENANT}}}

    # -- what `mspflow demo` and the contract suite use --------------------------------------------------------

    def demo_secrets(self) -> dict[str, str]:
        return {"teams_client_secret": self.client_secret}

    def demo_profile(self, on_call: str = DEMO_ON_CALL) -> dict[str, Any]:
        """The Microsoft set-up a demo tenant needs (``mspflow demo`` writes it): the app registration, the
        secret's name, and the on-call technician ``on_call`` linked to a user who has the app."""
        return {"client_id": self.client_id, "entra_tenant_id": ENTRA_TENANT,
                "client_secret_ref": "teams_client_secret",
                "teams_app_id": TEAMS_APP_ID, "users": {on_call: ALICE_OID}}

    def demo_calls(self) -> list[tuple[str, dict[str, Any]]]:
        """The dispatcher story: post the P1 to the service-desk channel, notify the on-call technician."""
        return [("teams.post_to_channel", {"channel_id": SERVICE_DESK, "text": "P1 T-1001: Exchange server not "
                                                                               "responding; on-site within 2 hours"}),
                ("teams.notify_user", {"user_id": DEMO_ON_CALL, "title": "T-1001: you are on call",
                                       "message": "Exchange server not responding: on-site check booked",
                                       "category": "assignment"})]
