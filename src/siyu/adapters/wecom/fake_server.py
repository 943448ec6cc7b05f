"""A local fake of WeCom's server API, for tests and the demo (there is no internet here).

It answers like qyapi.weixin.qq.com: HTTP 200 with `{"errcode": ..., "errmsg": ...}` JSON, tokens that
expire, 41001/40014/42001 for a missing/unknown/expired token, 40013/40001 for a wrong corp id/secret,
41051 for a welcome_code used twice. Tests inject errors (`fail`), expire tokens (`expire_tokens`) and read
back every call (`calls`). Serve it with `with FakeWeCom() as fake: WeComClient(..., base_url=fake.url)`.

Customer broadcasts (企业群发) are state-driven: `add_msg_template` keeps a task per sender; nothing is sent
until the test has the staff member confirm it (`confirm_msg_template`, as they would in 群发助手). Then
each customer's result is decided as WeCom does: 2 when they are no longer the sender's customer
(`remove_customer`), 3 when they already got MONTHLY_CUSTOMER_LIMIT broadcasts that month, else 1 (sent);
`get_groupmsg_task` and `get_groupmsg_send_result` read it back, a page at a time (`limit`, `cursor`).

App messages (应用消息, message/send) go to `app_messages` when the agentid is the app's (`agent_id`);
staff userids named in `staff_userids` (when it is not empty) are the app's visible range: the others are
answered in `invaliduser`, and 81013 when nobody is left. `enable_duplicate_check` drops the same body sent
again within its interval (`clock` seconds), as WeCom does; `app_message_calls` counts every accepted call.

`signed_callback` builds an encrypted, signed callback POST (what WeCom sends when someone scans a code),
and `add_external_contact_xml` & co. build the plaintext events.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

from siyu.adapters.wecom.crypto import WeComCrypto

Handler = Callable[[dict[str, Any], dict[str, str]], dict[str, Any]]


@dataclass
class RecordedCall:
    method: str
    path: str  # e.g. "externalcontact/add_contact_way"
    query: dict[str, str]
    body: dict[str, Any] | None
    reply: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Injected:
    path: str  # "*" for any API call (gettoken included only when named)
    errcode: int
    errmsg: str
    times: int


ERRMSG = {
    -1: "system busy",
    40001: "invalid secret",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40058: "invalid parameter",
    41001: "access_token missing",
    41051: "externaluser has started chatting",
    42001: "access_token expired",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
}

MONTHLY_CUSTOMER_LIMIT = 4  # WeCom: a customer receives at most 4 broadcasts a month from the enterprise
GROUPMSG_PAGE_MAX = 1000  # get_groupmsg_task / get_groupmsg_send_result: limit, at most 1000
# get_groupmsg_send_result status per customer (or group)
UNSENT, SENT, NOT_A_CUSTOMER, OVER_LIMIT = 0, 1, 2, 3
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


class FakeWeCom:
    def __init__(
        self,
        *,
        corp_id: str = "wwfake0000000000",
        secret: str = "fake-contact-secret",  # noqa: S107 - a fake for tests
        agent_id: int = 1000002,
        token_ttl: int = 7200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.token_ttl = token_ttl
        self.clock = clock
        self.calls: list[RecordedCall] = []
        self.tokens: dict[str, float] = {}  # token -> expires at (clock time)
        self.contact_ways: dict[str, dict[str, Any]] = {}
        self.welcomes: list[dict[str, Any]] = []
        self.used_welcome_codes: set[str] = set()
        self.msg_templates: list[dict[str, Any]] = []
        self.external_contacts: dict[str, dict[str, Any]] = {}
        self.removed_customers: set[tuple[str, str]] = set()  # (userid, external_userid) no longer friends
        self.group_chats: dict[str, list[str]] = {}  # owner userid -> chat ids (group broadcasts post there)
        self.staff_userids: set[str] = set()  # the app's visible range; empty: every userid is accepted
        self.app_messages: list[dict[str, Any]] = []  # delivered app messages (duplicates dropped)
        self.app_message_calls = 0
        self._app_sent_at: dict[str, float] = {}  # request body (canonical JSON) -> when it was last delivered
        self._received: dict[tuple[str, str], int] = {}  # (external_userid, month) -> broadcasts received
        self._injected: list[_Injected] = []
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes: dict[str, Handler] = {
            "externalcontact/add_contact_way": self._add_contact_way,
            "externalcontact/update_contact_way": self._update_contact_way,
            "externalcontact/get_contact_way": self._get_contact_way,
            "externalcontact/del_contact_way": self._del_contact_way,
            "externalcontact/send_welcome_msg": self._send_welcome_msg,
            "externalcontact/get": self._get_external_contact,
            "externalcontact/add_msg_template": self._add_msg_template,
            "externalcontact/get_groupmsg_task": self._get_groupmsg_task,
            "externalcontact/get_groupmsg_send_result": self._get_groupmsg_send_result,
            "message/send": self._send_app_message,
        }

    # --- control -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeWeCom is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeWeCom:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-wecom", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeWeCom:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail(self, path: str, errcode: int, errmsg: str | None = None, *, times: int = 1) -> None:
        """The next `times` calls to `path` ("*" = any API but gettoken) answer `errcode`."""
        with self._lock:
            self._injected.append(_Injected(path, errcode, errmsg or ERRMSG.get(errcode, "error"), times))

    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (the next call with one gets 42001)."""
        with self._lock:
            now = self.clock()
            self.tokens = dict.fromkeys(self.tokens, now - 1)

    def revoke_tokens(self) -> None:
        """Forget every token (the next call with one gets 40014)."""
        with self._lock:
            self.tokens.clear()

    def calls_to(self, path: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.path == path]

    def add_external_contact(self, external_userid: str, name: str, **extra: Any) -> None:
        self.external_contacts[external_userid] = {"external_userid": external_userid, "name": name, **extra}

    def remove_customer(self, external_userid: str, userid: str | None = None) -> None:
        """The customer deleted the staff member `userid` (every staff member when None): a broadcast the
        staff member confirms afterwards fails for them with status 2."""
        with self._lock:
            self.removed_customers.add((userid or "*", external_userid))

    def add_group_chat(self, chat_id: str, owner: str) -> None:
        """A customer group owned by `owner`: their group broadcasts post in it."""
        with self._lock:
            self.group_chats.setdefault(owner, []).append(chat_id)

    def confirm_msg_template(self, sender: str, *, msgid: str | None = None, send_time: int | None = None) -> list[str]:
        """The staff member `sender` confirms their waiting broadcast tasks (or the one `msgid`) in their
        WeCom client: each customer's result is decided now. Returns the msgids confirmed."""
        with self._lock:
            at = int(time.time()) if send_time is None else send_time
            month = dt.datetime.fromtimestamp(at, SHANGHAI).strftime("%Y-%m")
            confirmed = []
            for task in self.msg_templates:
                if task.get("sender") != sender or task["send_time"] is not None:
                    continue
                if msgid is not None and task["msgid"] != msgid:
                    continue
                task["send_time"] = at
                if task.get("chat_type") == "group":
                    task["results"] = dict.fromkeys(self.group_chats.get(sender, []), SENT)
                else:
                    for external in task.get("external_userid", []):
                        task["results"][external] = self._deliver(sender, external, month)
                confirmed.append(task["msgid"])
            return confirmed

    def _deliver(self, sender: str, external: str, month: str) -> int:
        if (sender, external) in self.removed_customers or ("*", external) in self.removed_customers:
            return NOT_A_CUSTOMER
        received = self._received.get((external, month), 0)
        if received >= MONTHLY_CUSTOMER_LIMIT:
            return OVER_LIMIT
        self._received[(external, month)] = received + 1
        return SENT

    # --- HTTP ----------------------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parsed = urllib.parse.urlsplit(request.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        path = parsed.path.removeprefix("/cgi-bin/")
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        body: dict[str, Any] | None = None
        if raw:
            try:
                loaded = json.loads(raw)
                body = loaded if isinstance(loaded, dict) else None
            except ValueError:
                body = None
        with self._lock:
            reply = self._dispatch(method, path, query, body, bool(raw))
            self.calls.append(RecordedCall(method, path, query, body, reply))
        data = json.dumps(reply, ensure_ascii=False).encode("utf-8")
        request.send_response(200)
        request.send_header("Content-Type", "application/json; charset=UTF-8")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _take_injected(self, path: str) -> dict[str, Any] | None:
        for item in self._injected:
            if item.path == path or (item.path == "*" and path != "gettoken"):
                item.times -= 1
                if item.times <= 0:
                    self._injected.remove(item)
                return _err(item.errcode, item.errmsg)
        return None

    def _dispatch(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any] | None, had_body: bool
    ) -> dict[str, Any]:
        if path == "gettoken":
            return self._take_injected(path) or self._gettoken(query)
        route = self._routes.get(path)
        if route is None:
            return _err(404, f"invalid url {path}")  # WeCom-style refusal of an unknown API
        token = query.get("access_token")
        if not token:
            return _err(41001)
        if token not in self.tokens:
            return _err(40014)
        if self.clock() >= self.tokens[token]:
            return _err(42001)
        injected = self._take_injected(path)
        if injected is not None:
            return injected
        wants_post = path != "externalcontact/get"
        if wants_post and (method != "POST" or body is None):
            return _err(47001, "data format error") if had_body else _err(44002, "empty post data")
        return route(body or {}, query)

    # --- API -----------------------------------------------------------------------------------------------

    def _gettoken(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("corpid") != self.corp_id:
            return _err(40013)
        if query.get("corpsecret") != self.secret:
            return _err(40001)
        token = f"fake-token-{next(self._seq)}"
        self.tokens[token] = self.clock() + self.token_ttl
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_ttl}

    def _add_contact_way(self, body: dict[str, Any], _q: dict[str, str]) -> dict[str, Any]:
        kind, scene = body.get("type"), body.get("scene")
        users, parties = body.get("user") or [], body.get("party") or []
        if kind not in (1, 2) or scene not in (1, 2):
            return _err(40058, "invalid type or scene")
        if not users and not parties:
            return _err(40058, "user and party are both empty")
        if kind == 1 and (len(users) != 1 or parties):
            return _err(40058, "type 1 takes exactly one user")
        if len(str(body.get("state") or "")) > 30:
            return _err(40058, "state exceeds 30 characters")
        config_id = f"cfg{next(self._seq):08d}"
        qr = f"https://wework.qpic.cn/wwpic/fake/{config_id}/0" if scene == 2 else None
        self.contact_ways[config_id] = {**body, "config_id": config_id, "qr_code": qr}
        reply: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "config_id": config_id}
        if qr:
            reply["qr_code"] = qr
        return reply

    def _update_contact_way(self, body: dict[str, Any], _q: dict[str, str]) -> dict[str, Any]:
        way = self.contact_ways.get(str(body.get("config_id")))
        if way is None:
            return _err(41044, "invalid config_id")
        way.update({k: v for k, v in body.items() if k != "config_id"})
        return _err(0, "ok")

    def _get_contact_way(self, body: dict[str, Any], _q: dict[str, str]) -> dict[str, Any]:
        way = self.contact_ways.get(str(body.get("config_id")))
        if way is None:
            return _err(41044, "invalid config_id")
        return {"errcode": 0, "errmsg": "ok", "contact_way": way}

    def _del_contact_way(self, body: dict[str, Any], _q: dict[str, str]) -> dict[str, Any]:
        if self.contact_ways.pop(str(body.get("config_id")), None) is None:
            return _err(41044, "invalid config_id")
        return _err(0, "ok")

    def _send_welcome_msg(self, body: dict[str, Any], _q: dict[str, str]) -> dict[str, Any]:
        code = str(body.get("welcome_code") or "")
        if not code:
            return _err(40058, "welcome_code missing")
        if code in self.used_welcome_codes:
            return _err(41051)
        self.used_welcome_codes.add(code)
        self.welcomes.append(body)
        return _err(0, "ok")

    def _get_external_contact(self, _b: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        contact = self.external_contacts.get(query.get("external_userid", ""))
        if contact is None:
            return _err(84061, "not external contact")
        return {"errcode": 0, "errmsg": "ok", "external_contact": contact, "follow_user": []}

    def _add_msg_template(self, body: dict[str, Any], _q: dict[str, str]) -> dict[str, Any]:
        if not body.get("text") and not body.get("attachments"):
            return _err(40058, "text and attachments are both empty")
        msgid = f"msg{next(self._seq):08d}"
        sender = body.get("sender")
        # WeCom leaves out of the task the customers who are not the sender's any more (fail_list)
        fail_list = [
            e
            for e in body.get("external_userid", [])
            if sender and ((sender, e) in self.removed_customers or ("*", e) in self.removed_customers)
        ]
        self.msg_templates.append({**body, "msgid": msgid, "send_time": None, "results": {}, "fail_list": fail_list})
        return {"errcode": 0, "errmsg": "ok", "fail_list": fail_list, "msgid": msgid}

    def _template(self, body: dict[str, Any]) -> dict[str, Any] | None:
        msgid = str(body.get("msgid") or "")
        return next((t for t in self.msg_templates if t["msgid"] == msgid), None)

    def _page(self, body: dict[str, Any], rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
        limit = body.get("limit") or GROUPMSG_PAGE_MAX
        if not isinstance(limit, int) or not 1 <= limit <= GROUPMSG_PAGE_MAX:
            return _err(40058, f"limit must be 1 to {GROUPMSG_PAGE_MAX}")
        cursor = str(body.get("cursor") or "0")
        start = int(cursor) if cursor.isdigit() else 0
        end = start + limit
        return {"errcode": 0, "errmsg": "ok", key: rows[start:end], "next_cursor": str(end) if end < len(rows) else ""}

    def _get_groupmsg_task(self, body: dict[str, Any], _q: dict[str, str]) -> dict[str, Any]:
        task = self._template(body)
        if task is None:
            return _err(40058, "invalid msgid")
        row: dict[str, Any] = {"userid": task.get("sender") or "", "status": 0}
        if task["send_time"] is not None:
            row = {**row, "status": 2, "send_time": task["send_time"]}
        return self._page(body, [row], "task_list")

    def _get_groupmsg_send_result(self, body: dict[str, Any], _q: dict[str, str]) -> dict[str, Any]:
        task = self._template(body)
        if task is None:
            return _err(40058, "invalid msgid")
        userid = str(body.get("userid") or "")
        if not userid:
            return _err(40058, "userid missing")
        if userid != task.get("sender"):
            return self._page(body, [], "send_list")
        sent_at = task["send_time"]
        rows: list[dict[str, Any]] = []
        if task.get("chat_type") == "group":
            for chat_id, status in task["results"].items():
                rows.append({"chat_id": chat_id, "userid": userid, "status": status, "send_time": sent_at})
        else:
            for external in task.get("external_userid", []):
                if external in task["fail_list"]:
                    continue
                status = task["results"].get(external, UNSENT)
                row = {"external_userid": external, "userid": userid, "status": status}
                if status == SENT:
                    row["send_time"] = sent_at
                rows.append(row)
        return self._page(body, rows, "send_list")

    def _send_app_message(self, body: dict[str, Any], _q: dict[str, str]) -> dict[str, Any]:
        if body.get("agentid") != self.agent_id:
            return _err(40056, "invalid agentid")
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "textcard") or not isinstance(body.get(msgtype), dict):
            return _err(40008, "invalid message type")
        users = [u for u in str(body.get("touser") or "").split("|") if u]
        if not users:
            return _err(40058, "touser missing")
        invalid = [u for u in users if self.staff_userids and u not in self.staff_userids]
        valid = [u for u in users if u not in invalid]
        if not valid:
            return _err(81013, "user & party & tag all invalid")
        self.app_message_calls += 1
        msgid = f"app{next(self._seq):08d}"
        key = json.dumps(body, sort_keys=True, ensure_ascii=False)
        now = self.clock()
        interval = body.get("duplicate_check_interval") or 1800
        last = self._app_sent_at.get(key)
        if not (body.get("enable_duplicate_check") and last is not None and now - last < interval):
            self._app_sent_at[key] = now
            self.app_messages.append({**body, "msgid": msgid, "to": valid})
        return {
            "errcode": 0,
            "errmsg": "ok",
            "invaliduser": "|".join(u.lower() for u in invalid),
            "invalidparty": "",
            "invalidtag": "",
            "unlicenseduser": "",
            "msgid": msgid,
        }


def _err(code: int, msg: str | None = None) -> dict[str, Any]:
    return {"errcode": code, "errmsg": msg if msg is not None else ERRMSG.get(code, "error")}


# --- callbacks: what WeCom POSTs to /callbacks/wecom/{workspace} -------------------------------------------


@dataclass(frozen=True)
class SignedCallback:
    query: dict[str, str]  # msg_signature, timestamp, nonce
    body: str  # the XML envelope with <Encrypt>


def signed_callback(
    crypto: WeComCrypto, plaintext_xml: str, *, timestamp: str | None = None, nonce: str = "1372623149"
) -> SignedCallback:
    """Encrypt and sign `plaintext_xml` exactly as WeCom delivers a callback."""
    ts = timestamp or str(int(time.time()))
    encrypt = crypto.encrypt(plaintext_xml)
    body = (
        f"<xml><ToUserName><![CDATA[{crypto.receive_id}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
    )
    return SignedCallback(
        {"msg_signature": crypto.signature(ts, nonce, encrypt), "timestamp": ts, "nonce": nonce}, body
    )


def url_verification(
    crypto: WeComCrypto, echo: str, *, timestamp: str = "1409659589", nonce: str = "263014780"
) -> dict[str, str]:
    """The GET query WeCom sends when the callback URL is saved in the admin console."""
    echostr = crypto.encrypt(echo)
    return {
        "msg_signature": crypto.signature(timestamp, nonce, echostr),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": echostr,
    }


def _cdata(name: str, value: str | None) -> str:
    return "" if value is None else f"<{name}><![CDATA[{value}]]></{name}>"


def external_contact_xml(
    corp_id: str,
    change_type: str,
    user_id: str,
    external_user_id: str,
    *,
    create_time: int = 1700000000,
    state: str | None = None,
    welcome_code: str | None = None,
    extra: dict[str, str] | None = None,
) -> str:
    """A change_external_contact event (add_external_contact, del_follow_user, ...) in plaintext XML."""
    extra_xml = "".join(_cdata(k, v) for k, v in (extra or {}).items())
    return (
        f"<xml>{_cdata('ToUserName', corp_id)}{_cdata('FromUserName', 'sys')}"
        f"<CreateTime>{create_time}</CreateTime>{_cdata('MsgType', 'event')}"
        f"{_cdata('Event', 'change_external_contact')}{_cdata('ChangeType', change_type)}"
        f"{_cdata('UserID', user_id)}{_cdata('ExternalUserID', external_user_id)}"
        f"{_cdata('State', state)}{_cdata('WelcomeCode', welcome_code)}{extra_xml}</xml>"
    )


def add_external_contact_xml(
    corp_id: str,
    user_id: str,
    external_user_id: str,
    *,
    state: str | None = None,
    welcome_code: str | None = None,
    create_time: int = 1700000000,
) -> str:
    return external_contact_xml(
        corp_id,
        "add_external_contact",
        user_id,
        external_user_id,
        create_time=create_time,
        state=state,
        welcome_code=welcome_code,
    )


def external_chat_xml(
    corp_id: str,
    chat_id: str,
    change_type: str,
    *,
    update_detail: str | None = None,
    members: Sequence[str] = (),
    join_scene: int | None = None,
    quit_scene: int | None = None,
    create_time: int = 1700000000,
) -> str:
    """A change_external_chat event (group create / update with member changes / dismiss)."""
    parts = [
        f"<xml>{_cdata('ToUserName', corp_id)}{_cdata('FromUserName', 'sys')}",
        f"<CreateTime>{create_time}</CreateTime>{_cdata('MsgType', 'event')}",
        f"{_cdata('Event', 'change_external_chat')}{_cdata('ChatId', chat_id)}{_cdata('ChangeType', change_type)}",
        _cdata("UpdateDetail", update_detail),
    ]
    if join_scene is not None:
        parts.append(f"<JoinScene>{join_scene}</JoinScene>")
    if quit_scene is not None:
        parts.append(f"<QuitScene>{quit_scene}</QuitScene>")
    if members:
        parts.append(f"<MemChangeCnt>{len(members)}</MemChangeCnt>")
        parts.append("<MemChangeList>" + "".join(f"<Item>{escape(m)}</Item>" for m in members) + "</MemChangeList>")
    parts.append("</xml>")
    return "".join(parts)
