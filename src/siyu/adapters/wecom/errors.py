"""Typed WeCom errors.

Two families:
- callback rejections (`CallbackRejected` and subclasses): a callback that fails its signature, its
  decryption or its XML is refused before anything in it is processed;
- API errors (`WeComError` and subclasses): a non-zero `errcode` from qyapi.weixin.qq.com, carrying the
  code and WeCom's message, or a network failure reaching it.

Error codes: WeCom's global return codes (企业微信 全局错误码, developer.work.weixin.qq.com/document/path/90313);
look any code up at https://open.work.weixin.qq.com/devtool/query?e=<errcode>.
"""

from __future__ import annotations

from siyu.errors import SiyuError

# --- callbacks -----------------------------------------------------------------------------------------


class CallbackRejected(SiyuError):
    """A WeCom callback that is not authentic or not readable. Nothing in it was processed."""

    status_code = 400
    code = "wecom_callback_rejected"


class InvalidSignature(CallbackRejected):
    status_code = 403
    code = "wecom_bad_signature"


class InvalidCiphertext(CallbackRejected):
    """Not base64, not whole AES blocks, bad PKCS#7 padding or an impossible length field."""

    code = "wecom_bad_ciphertext"


class ReceiveIdMismatch(CallbackRejected):
    """The decrypted message names another corp (or suite) than the one configured."""

    status_code = 403
    code = "wecom_receive_id_mismatch"


class MalformedCallback(CallbackRejected):
    """The XML is unsafe (DOCTYPE/entities), not UTF-8, too large, or lacks a required element."""

    code = "wecom_malformed_callback"


class InvalidAESKey(SiyuError):
    """The configured EncodingAESKey is not 43 base64 characters encoding 32 bytes."""

    status_code = 422
    code = "wecom_invalid_aes_key"


# --- API -----------------------------------------------------------------------------------------------


class WeComError(SiyuError):
    """WeCom answered with a non-zero errcode (or could not be reached: `errcode` is None)."""

    status_code = 502
    code = "wecom_error"

    def __init__(self, errcode: int | None, errmsg: str, *, api: str = "") -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.api = api
        where = f" on {api}" if api else ""
        if errcode is None:
            message = f"WeCom could not be reached{where}: {errmsg}"
        else:
            message = (
                f"WeCom refused the call{where}: errcode {errcode} ({errmsg}). "
                f"See https://open.work.weixin.qq.com/devtool/query?e={errcode}"
            )
        super().__init__(message, details=[{"errcode": errcode, "errmsg": errmsg, "api": api}])


class WeComNetworkError(WeComError):
    """Timeout, refused connection, TLS failure or a reply that is not WeCom's JSON."""

    code = "wecom_unreachable"


class InvalidCredentials(WeComError):
    """gettoken refused the corp id (40013) or the secret (40001): fix the workspace's WeCom settings."""

    status_code = 422
    code = "wecom_invalid_credentials"


class AccessTokenRejected(WeComError):
    """40001/40014/42001 again right after fetching a fresh token."""

    code = "wecom_access_token_rejected"


class WeComBusy(WeComError):
    """-1 (系统繁忙) after the bounded retries."""

    status_code = 503
    code = "wecom_busy"


class RateLimited(WeComError):
    """45009 (接口调用超过限制) or 45033 (接口并发调用超过限制) after the bounded retries."""

    status_code = 429
    code = "wecom_rate_limited"


class WelcomeAlreadySent(WeComError):
    """41051: the contact already chatted or another app sent the welcome first. Never retried."""

    status_code = 409
    code = "wecom_welcome_already_sent"
