"""WeCom server API client (qyapi.weixin.qq.com): access token, 「联系我」 codes, welcome messages, customer
broadcasts (企业群发: add_msg_template, and reading back get_groupmsg_task / get_groupmsg_send_result), and
app messages to staff (应用消息: message/send).

Behaviour (企业微信 服务端API; global return codes at developer.work.weixin.qq.com/document/path/90313):
- access_token (GET /cgi-bin/gettoken, document/path/91039) is cached per (base URL, corp id, secret),
  shared by every client of that app in the process, thread-safe, and refreshed `refresh_margin` seconds
  before its `expires_in` (7200 s) runs out — WeCom asks callers to cache it and not fetch it per call;
- 40001 / 40014 / 42001 (invalid or expired token) on an API call: fetch a new token, retry once;
- -1 (系统繁忙) and 45009 / 45033 (frequency / concurrency limits): back off and retry, at most
  `max_retries` times (WeCom suggests no more than 3), sleeping through the injected `sleep`;
- 41051 on send_welcome_msg (externaluser has started chatting): `WelcomeAlreadySent`, never retried;
- every other non-zero errcode: `WeComError(errcode, errmsg)`; network failures: `WeComNetworkError`.
Network failures are not retried: a POST that timed out may have been applied.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import httpx

from siyu.adapters.wecom.errors import (
    AccessTokenRejected,
    InvalidCredentials,
    RateLimited,
    WeComBusy,
    WeComError,
    WeComNetworkError,
    WelcomeAlreadySent,
)
from siyu.errors import validation_error

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"

TOKEN_INVALID_CODES = frozenset({40001, 40014, 42001})
BUSY = -1
RATE_LIMIT_CODES = frozenset({45009, 45033})
WELCOME_ALREADY_SENT = 41051
CREDENTIAL_CODES = frozenset({40001, 40013})  # on gettoken: invalid secret / invalid corp id

STATE_MAX_CHARS = 30  # 「联系我」 state: "不超过30个字符"
REMARK_MAX_CHARS = 30
CONTACT_WAY_MAX_USERS = 100
WELCOME_MAX_ATTACHMENTS = 9
WELCOME_TEXT_MAX_BYTES = 4000
WELCOME_WINDOW_SECONDS = 20.0  # send_welcome_msg only within 20 s of the add_external_contact event
GROUPMSG_PAGE_MAX = 1000  # get_groupmsg_task / get_groupmsg_send_result: at most 1000 rows a page
GROUPMSG_MAX_PAGES = 100  # a task holds at most 10,000 customers: 10 pages; 100 is a safety stop
APP_MESSAGE_MAX_USERS = 1000  # message/send: touser, at most 1000 userids
APP_TEXT_MAX_BYTES = 2048  # text message content
APP_CARD_TITLE_MAX_BYTES = 128  # textcard title
APP_CARD_DESCRIPTION_MAX_BYTES = 512  # textcard description
APP_CARD_URL_MAX_BYTES = 2048
APP_DUPLICATE_CHECK_MAX_SECONDS = 4 * 3600  # duplicate_check_interval: at most 4 hours
ALL_RECIPIENTS_INVALID = 81013  # message/send: "user & party & tag all invalid"

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def default_backoff(attempt: int) -> float:
    """Seconds to wait before retry `attempt` (0-based): 0.5, 1, 2, 4 … capped at 8."""
    return float(min(8.0, 0.5 * 2**attempt))


@dataclass
class _Token:
    value: str
    refresh_at: float  # monotonic time after which we fetch a new one
    expires_at: float


class TokenCache:
    """access_tokens per app, shared across clients and threads. One fetch at a time per app."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, ...], _Token] = {}
        self._app_locks: dict[tuple[str, ...], threading.Lock] = {}

    def app_lock(self, key: tuple[str, ...]) -> threading.Lock:
        with self._lock:
            return self._app_locks.setdefault(key, threading.Lock())

    def get(self, key: tuple[str, ...], now: float) -> str | None:
        with self._lock:
            token = self._tokens.get(key)
        return token.value if token is not None and now < token.refresh_at else None

    def put(self, key: tuple[str, ...], token: _Token) -> None:
        with self._lock:
            self._tokens[key] = token

    def invalidate(self, key: tuple[str, ...], value: str) -> None:
        """Forget `value` — only if it is still the cached one (another thread may have refreshed)."""
        with self._lock:
            token = self._tokens.get(key)
            if token is not None and token.value == value:
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


SHARED_TOKEN_CACHE = TokenCache()


@dataclass(frozen=True)
class ContactWay:
    config_id: str
    qr_code: str | None


@dataclass(frozen=True)
class MsgTemplateResult:
    msgid: str
    fail_list: list[str]


@dataclass(frozen=True)
class GroupMsgTask:
    """One staff member's part of a broadcast (get_groupmsg_task): status 0 not sent yet, 2 sent."""

    userid: str
    status: int
    send_time: int | None  # Unix seconds, once sent

    @property
    def sent(self) -> bool:
        return self.status != 0


@dataclass(frozen=True)
class GroupMsgSendResult:
    """One customer's (or, for a group broadcast, one group's) result (get_groupmsg_send_result):
    0 not sent yet, 1 sent, 2 not the staff member's customer any more, 3 already got another broadcast
    this month (WeCom's limit)."""

    userid: str
    status: int
    external_userid: str | None
    chat_id: str | None
    send_time: int | None


@dataclass(frozen=True)
class AppMessageResult:
    """message/send's answer: recipients WeCom refused (lower-cased by WeCom; not in the app's visible
    range, unknown, or without a licence) are listed; the rest got the message."""

    msgid: str
    invalid_users: list[str]
    unlicensed_users: list[str]


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str  # "" when this is the last page


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class WeComClient:
    """A client for one WeCom app (corp id + secret: the 客户联系 secret or a self-built app granted it)."""

    def __init__(
        self,
        corp_id: str,
        secret: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        http: httpx.Client | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        backoff: Callable[[int], float] = default_backoff,
        max_retries: int = 3,
        refresh_margin: float = 300.0,
        timeout: float = 10.0,
        token_cache: TokenCache | None = None,
    ) -> None:
        self.corp_id = corp_id
        self._secret = secret
        self.base_url = base_url.rstrip("/")
        self._http = http or httpx.Client(timeout=timeout)
        self._owns_http = http is None
        self.clock = clock
        self.sleep = sleep
        self.backoff = backoff
        self.max_retries = max_retries
        self.refresh_margin = refresh_margin
        self._cache = token_cache if token_cache is not None else SHARED_TOKEN_CACHE
        secret_digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()
        self._key = (self.base_url, corp_id, secret_digest)

    def __repr__(self) -> str:
        return f"WeComClient(corp_id={self.corp_id!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> WeComClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport -----------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, params: Mapping[str, str], body: Any) -> dict[str, Any]:
        url = f"{self.base_url}/cgi-bin/{path}"
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"} if content is not None else None
        try:
            response = self._http.request(method, url, params=dict(params), content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise WeComNetworkError(None, f"{type(exc).__name__}: {exc}", api=path) from exc
        if response.status_code >= 400:
            raise WeComNetworkError(None, f"HTTP {response.status_code}", api=path)
        try:
            data = response.json()
        except ValueError as exc:
            raise WeComNetworkError(None, "the reply is not JSON", api=path) from exc
        if not isinstance(data, dict):
            raise WeComNetworkError(None, "the reply is not a JSON object", api=path)
        return data

    def _retry_wait(self, attempt: int, deadline: float | None) -> bool:
        """Sleep before retry `attempt` if it is allowed and fits before `deadline`; False: give up."""
        if attempt >= self.max_retries:
            return False
        delay = self.backoff(attempt)
        if deadline is not None and self.clock() + delay > deadline:
            return False
        self.sleep(delay)
        return True

    # --- token ---------------------------------------------------------------------------------------------

    def get_access_token(self, *, deadline: float | None = None) -> str:
        """The cached access_token, fetched (once, under a per-app lock) when missing or near expiry."""
        token = self._cache.get(self._key, self.clock())
        if token is not None:
            return token
        with self._cache.app_lock(self._key):
            token = self._cache.get(self._key, self.clock())  # another thread may have fetched it
            if token is not None:
                return token
            return self._fetch_token(deadline)

    def _fetch_token(self, deadline: float | None) -> str:
        attempt = 0
        while True:
            started = self.clock()
            data = self._send("GET", "gettoken", {"corpid": self.corp_id, "corpsecret": self._secret}, None)
            code = int(data.get("errcode", 0) or 0)
            if code == 0:
                value = str(data["access_token"])
                expires_in = float(data.get("expires_in", 7200))
                margin = min(self.refresh_margin, expires_in / 2)
                self._cache.put(self._key, _Token(value, started + expires_in - margin, started + expires_in))
                return value
            msg = str(data.get("errmsg", ""))
            if code in CREDENTIAL_CODES:
                raise InvalidCredentials(code, msg, api="gettoken")
            if (code == BUSY or code in RATE_LIMIT_CODES) and self._retry_wait(attempt, deadline):
                attempt += 1
                continue
            raise _error_for(code, msg, "gettoken")

    # --- calls ---------------------------------------------------------------------------------------------

    def call(
        self,
        method: Literal["GET", "POST"],
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        deadline: float | None = None,
        retry_busy: bool = True,
    ) -> dict[str, Any]:
        """Call /cgi-bin/{path} with the app's token; the retry policy in the module docstring applies.

        `deadline` (a `clock()` value) stops backing off when the next wait would pass it.
        """
        refreshed = False
        attempt = 0
        while True:
            token = self.get_access_token(deadline=deadline)
            data = self._send(method, path, {**(params or {}), "access_token": token}, body)
            code = int(data.get("errcode", 0) or 0)
            if code == 0:
                return data
            msg = str(data.get("errmsg", ""))
            if code in TOKEN_INVALID_CODES:
                if refreshed:
                    raise AccessTokenRejected(code, msg, api=path)
                self._cache.invalidate(self._key, token)
                refreshed = True
                continue
            if retry_busy and (code == BUSY or code in RATE_LIMIT_CODES) and self._retry_wait(attempt, deadline):
                attempt += 1
                continue
            raise _error_for(code, msg, path)

    # --- 「联系我」 (externalcontact/add_contact_way, document/path/92228) ------------------------------------

    def add_contact_way(
        self,
        *,
        users: Sequence[str] = (),
        parties: Sequence[int] = (),
        state: str | None = None,
        contact_type: Literal[1, 2] | None = None,
        scene: Literal[1, 2] = 2,
        style: int | None = None,
        remark: str | None = None,
        skip_verify: bool = True,
        is_exclusive: bool | None = None,
    ) -> ContactWay:
        """Create a 「联系我」 QR code: type 1 = one staff member, 2 = several; scene 2 = QR code.

        `state` (≤ 30 characters) comes back in the add_external_contact callback: siyu puts the channel
        code there so each new contact is attributed to the code scanned.
        """
        kind = contact_type or (1 if len(users) == 1 and not parties else 2)
        body = _contact_way_body(
            kind, users, parties, state, remark, skip_verify, style, is_exclusive, require_members=True
        )
        body["scene"] = scene
        data = self.call("POST", "externalcontact/add_contact_way", body=body)
        return ContactWay(config_id=str(data["config_id"]), qr_code=data.get("qr_code"))

    def update_contact_way(
        self,
        config_id: str,
        *,
        users: Sequence[str] | None = None,
        parties: Sequence[int] | None = None,
        state: str | None = None,
        remark: str | None = None,
        skip_verify: bool | None = None,
        style: int | None = None,
    ) -> None:
        """Change a 「联系我」 code in place (externalcontact/update_contact_way): the QR stays the same."""
        body = _contact_way_body(None, users, parties, state, remark, skip_verify, style, None, require_members=False)
        body["config_id"] = config_id
        self.call("POST", "externalcontact/update_contact_way", body=body)

    def get_contact_way(self, config_id: str) -> dict[str, Any]:
        data = self.call("POST", "externalcontact/get_contact_way", body={"config_id": config_id})
        way = data.get("contact_way")
        return way if isinstance(way, dict) else {}

    def del_contact_way(self, config_id: str) -> None:
        self.call("POST", "externalcontact/del_contact_way", body={"config_id": config_id})

    # --- welcome message (externalcontact/send_welcome_msg, document/path/92137) ----------------------------

    def send_welcome_msg(
        self,
        welcome_code: str,
        *,
        text: str | None = None,
        attachments: Sequence[Mapping[str, Any]] = (),
        deadline: float | None = None,
    ) -> None:
        """Send the new-contact welcome. Only within 20 s of the event, only once: 41051 raises
        `WelcomeAlreadySent` (the contact already chatted, or another app sent first) and is not retried.
        Pass `deadline` (e.g. received_at + WELCOME_WINDOW_SECONDS) so back-off never overruns the window.
        """
        if not welcome_code:
            raise validation_error("welcome_code", "is empty")
        if not text and not attachments:
            raise validation_error("text", "a welcome needs text or at least one attachment")
        if text is not None:
            _check_bytes("text", text, WELCOME_TEXT_MAX_BYTES)
        if len(attachments) > WELCOME_MAX_ATTACHMENTS:
            raise validation_error("attachments", f"at most {WELCOME_MAX_ATTACHMENTS}", limit=WELCOME_MAX_ATTACHMENTS)
        for i, item in enumerate(attachments):
            msgtype = item.get("msgtype")
            if not isinstance(msgtype, str) or msgtype not in item:
                raise validation_error(f"attachments[{i}]", "needs msgtype and an object of that name")
        body: dict[str, Any] = {"welcome_code": welcome_code}
        if text:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = [dict(a) for a in attachments]
        self.call("POST", "externalcontact/send_welcome_msg", body=body, deadline=deadline)

    # --- contacts and broadcasts ------------------------------------------------------------------------------

    def get_external_contact(self, external_userid: str, *, cursor: str | None = None) -> dict[str, Any]:
        """externalcontact/get (document/path/92114): {"external_contact": {...}, "follow_user": [...]}."""
        params = {"external_userid": external_userid}
        if cursor:
            params["cursor"] = cursor
        data = self.call("GET", "externalcontact/get", params=params)
        return {k: v for k, v in data.items() if k not in ("errcode", "errmsg")}

    def add_msg_template(
        self,
        *,
        sender: str | None = None,
        external_userids: Sequence[str] = (),
        text: str | None = None,
        attachments: Sequence[Mapping[str, Any]] = (),
        chat_type: Literal["single", "group"] = "single",
        allow_select: bool | None = None,
    ) -> MsgTemplateResult:
        """Create a broadcast task (externalcontact/add_msg_template, document/path/92135); staff confirm it
        in their WeCom client. At most 10,000 external_userids per task."""
        if not text and not attachments:
            raise validation_error("text", "a broadcast needs text or at least one attachment")
        if len(external_userids) > 10_000:
            raise validation_error("external_userids", "at most 10000 per task", limit=10_000)
        body: dict[str, Any] = {"chat_type": chat_type}
        if sender:
            body["sender"] = sender
        if external_userids:
            body["external_userid"] = list(external_userids)
        if text:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = [dict(a) for a in attachments]
        if allow_select is not None:
            body["allow_select"] = allow_select
        data = self.call("POST", "externalcontact/add_msg_template", body=body)
        return MsgTemplateResult(msgid=str(data.get("msgid", "")), fail_list=list(data.get("fail_list", [])))

    def get_groupmsg_task(
        self, msgid: str, *, cursor: str | None = None, limit: int = GROUPMSG_PAGE_MAX
    ) -> Page[GroupMsgTask]:
        """One page of a broadcast's staff tasks (externalcontact/get_groupmsg_task, document/path/93338):
        who has sent it (status 2, with send_time) and who has not yet (0)."""
        body = _page_body({"msgid": msgid}, cursor, limit)
        data = self.call("POST", "externalcontact/get_groupmsg_task", body=body)
        items = [
            GroupMsgTask(
                userid=str(row.get("userid") or ""),
                status=_int_or_none(row.get("status")) or 0,
                send_time=_int_or_none(row.get("send_time")),
            )
            for row in data.get("task_list") or []
            if isinstance(row, dict)
        ]
        return Page(items, str(data.get("next_cursor") or ""))

    def get_groupmsg_send_result(
        self, msgid: str, userid: str, *, cursor: str | None = None, limit: int = GROUPMSG_PAGE_MAX
    ) -> Page[GroupMsgSendResult]:
        """One page of a staff member's per-customer results of a broadcast
        (externalcontact/get_groupmsg_send_result, document/path/93338)."""
        body = _page_body({"msgid": msgid, "userid": userid}, cursor, limit)
        data = self.call("POST", "externalcontact/get_groupmsg_send_result", body=body)
        items = [
            GroupMsgSendResult(
                userid=str(row.get("userid") or userid),
                status=_int_or_none(row.get("status")) or 0,
                external_userid=str(row["external_userid"]) if row.get("external_userid") else None,
                chat_id=str(row["chat_id"]) if row.get("chat_id") else None,
                send_time=_int_or_none(row.get("send_time")),
            )
            for row in data.get("send_list") or []
            if isinstance(row, dict)
        ]
        return Page(items, str(data.get("next_cursor") or ""))

    def groupmsg_tasks(self, msgid: str) -> list[GroupMsgTask]:
        """Every page of get_groupmsg_task."""
        return _every_page(lambda cursor: self.get_groupmsg_task(msgid, cursor=cursor))

    def groupmsg_send_results(self, msgid: str, userid: str) -> list[GroupMsgSendResult]:
        """Every page of get_groupmsg_send_result for one staff member."""
        return _every_page(lambda cursor: self.get_groupmsg_send_result(msgid, userid, cursor=cursor))

    # --- app messages (应用消息, message/send, document/path/90236) ------------------------------------

    def send_app_message(
        self,
        *,
        agent_id: int,
        userids: Sequence[str],
        text: str | None = None,
        card: Mapping[str, str] | None = None,
        duplicate_check_seconds: int | None = None,
    ) -> AppMessageResult:
        """Send the app's message to staff members (their WeCom userids): plain `text`, or a text card
        `card` = {title, description, url[, btntxt]}. With `duplicate_check_seconds`, WeCom drops the same
        request body sent again within that time (at most 4 hours): a retry after a timeout cannot
        deliver twice. When every recipient is invalid WeCom answers 81013 (a WeComError)."""
        users = [u for u in userids if u]
        if not users:
            raise validation_error("userids", "name at least one staff member (WeCom userid)")
        if len(users) > APP_MESSAGE_MAX_USERS:
            raise validation_error(
                "userids", f"at most {APP_MESSAGE_MAX_USERS} per message", limit=APP_MESSAGE_MAX_USERS
            )
        if (text is None) == (card is None):
            raise validation_error("text", "give either text or card")
        body: dict[str, Any] = {"touser": "|".join(users), "agentid": agent_id}
        if text is not None:
            _check_bytes("text", text, APP_TEXT_MAX_BYTES)
            body["msgtype"] = "text"
            body["text"] = {"content": text}
        else:
            assert card is not None
            for name, limit in (
                ("title", APP_CARD_TITLE_MAX_BYTES),
                ("description", APP_CARD_DESCRIPTION_MAX_BYTES),
                ("url", APP_CARD_URL_MAX_BYTES),
            ):
                if not card.get(name):
                    raise validation_error(f"card.{name}", "is required")
                _check_bytes(f"card.{name}", card[name], limit)
            body["msgtype"] = "textcard"
            body["textcard"] = dict(card)
        if duplicate_check_seconds is not None:
            if not 1 <= duplicate_check_seconds <= APP_DUPLICATE_CHECK_MAX_SECONDS:
                raise validation_error(
                    "duplicate_check_seconds",
                    f"1 to {APP_DUPLICATE_CHECK_MAX_SECONDS} (4 hours)",
                    limit=APP_DUPLICATE_CHECK_MAX_SECONDS,
                )
            body["enable_duplicate_check"] = 1
            body["duplicate_check_interval"] = duplicate_check_seconds
        data = self.call("POST", "message/send", body=body)
        return AppMessageResult(
            msgid=str(data.get("msgid") or ""),
            invalid_users=_bar_list(data.get("invaliduser")),
            unlicensed_users=_bar_list(data.get("unlicenseduser")),
        )


def _bar_list(value: Any) -> list[str]:
    """WeCom's "a|b|c" lists (message/send's invaliduser & co.)."""
    return [part for part in str(value or "").split("|") if part]


def _check_bytes(field: str, value: str, limit: int) -> None:
    size = len(value.encode("utf-8"))
    if size > limit:
        raise validation_error(field, f"at most {limit} bytes in UTF-8 (this is {size})", limit=limit)


def _page_body(body: dict[str, Any], cursor: str | None, limit: int) -> dict[str, Any]:
    if not 1 <= limit <= GROUPMSG_PAGE_MAX:
        raise validation_error("limit", f"1 to {GROUPMSG_PAGE_MAX}", limit=GROUPMSG_PAGE_MAX)
    if not body.get("msgid"):
        raise validation_error("msgid", "is empty")
    body["limit"] = limit
    if cursor:
        body["cursor"] = cursor
    return body


def _every_page(fetch: Callable[[str | None], Page[T]]) -> list[T]:
    items: list[T] = []
    cursor: str | None = None
    for _ in range(GROUPMSG_MAX_PAGES):
        page = fetch(cursor)
        items.extend(page.items)
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    return items


def _contact_way_body(
    kind: int | None,
    users: Sequence[str] | None,
    parties: Sequence[int] | None,
    state: str | None,
    remark: str | None,
    skip_verify: bool | None,
    style: int | None,
    is_exclusive: bool | None,
    *,
    require_members: bool,
) -> dict[str, Any]:
    if state is not None and len(state) > STATE_MAX_CHARS:
        raise validation_error("state", f"at most {STATE_MAX_CHARS} characters", limit=STATE_MAX_CHARS)
    if remark is not None and len(remark) > REMARK_MAX_CHARS:
        raise validation_error("remark", f"at most {REMARK_MAX_CHARS} characters", limit=REMARK_MAX_CHARS)
    if users is not None and len(users) > CONTACT_WAY_MAX_USERS:
        raise validation_error("users", f"at most {CONTACT_WAY_MAX_USERS} staff", limit=CONTACT_WAY_MAX_USERS)
    if require_members and not users and not parties:
        raise validation_error("users", "name at least one staff member (WeCom userid) or department")
    if kind == 1 and (parties or len(users or ()) != 1):
        raise validation_error("users", "a single-person code (type 1) takes exactly one user and no department")
    body: dict[str, Any] = {}
    if kind is not None:
        body["type"] = kind
    if users is not None:
        body["user"] = list(users)
    if parties:
        body["party"] = list(parties)
    if state is not None:
        body["state"] = state
    if remark is not None:
        body["remark"] = remark
    if skip_verify is not None:
        body["skip_verify"] = skip_verify
    if style is not None:
        body["style"] = style
    if is_exclusive is not None:
        body["is_exclusive"] = is_exclusive
    return body


def _error_for(code: int, msg: str, api: str) -> WeComError:
    if code == WELCOME_ALREADY_SENT:
        return WelcomeAlreadySent(code, msg, api=api)
    if code == BUSY:
        return WeComBusy(code, msg, api=api)
    if code in RATE_LIMIT_CODES:
        return RateLimited(code, msg, api=api)
    if code in TOKEN_INVALID_CODES:
        return AccessTokenRejected(code, msg, api=api)
    return WeComError(code, msg, api=api)
