"""WeCom callback crypto, compatible with the official WXBizMsgCrypt libraries.

The scheme (企业微信 加解密方案说明, developer.work.weixin.qq.com/document/path/90968):
- msg_signature = sha1 of the lexicographically sorted concatenation of token, timestamp, nonce and
  the ciphertext (hex, lower case);
- AESKey = base64decode(EncodingAESKey + "="), 32 bytes; AES-256-CBC with IV = AESKey[:16];
- plaintext = 16 random bytes + 4-byte big-endian length of msg + msg + receive_id (the corp id, or the
  suite id for third-party apps), padded PKCS#7-style to a multiple of 32 bytes (pad value 1..32);
- the ciphertext travels base64-encoded, as `echostr` (URL verification) or in <Encrypt> (POST body).

Every failure raises a typed `CallbackRejected` before any content is returned, so the caller processes
nothing from a forged or damaged callback. Signatures are compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from siyu.adapters.wecom._xml import child_text, parse_xml
from siyu.adapters.wecom.errors import (
    InvalidAESKey,
    InvalidCiphertext,
    InvalidSignature,
    MalformedCallback,
    ReceiveIdMismatch,
)

BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16
RANDOM_PREFIX = 16
MAX_CIPHERTEXT_CHARS = 512 * 1024


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """msg_signature: sha1 over the sorted concatenation of the four strings."""
    joined = "".join(sorted([token, timestamp, nonce, encrypt]))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()  # noqa: S324 - SHA-1 is WeCom's protocol


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key from the 43-character EncodingAESKey set in the WeCom admin console."""
    if len(encoding_aes_key) != 43:
        raise InvalidAESKey(f"EncodingAESKey must be 43 characters, got {len(encoding_aes_key)}")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise InvalidAESKey("EncodingAESKey must be letters and digits (base64 without the final '=')") from exc
    if len(key) != 32:  # pragma: no cover - 43 valid base64 chars + "=" always decode to 32 bytes
        raise InvalidAESKey("EncodingAESKey does not decode to 32 bytes")
    return key


def pkcs7_pad(data: bytes, block: int = BLOCK) -> bytes:
    n = block - len(data) % block
    return data + bytes([n]) * n


def pkcs7_unpad(data: bytes, block: int = BLOCK) -> bytes:
    if not data or len(data) % 16:
        raise InvalidCiphertext("decrypted data is not whole AES blocks")
    n = data[-1]
    if not 1 <= n <= block or n > len(data):
        raise InvalidCiphertext("bad padding")
    if not hmac.compare_digest(data[-n:], bytes([n]) * n):
        raise InvalidCiphertext("bad padding")
    return data[:-n]


class WeComCrypto:
    """One WeCom callback configuration: Token, EncodingAESKey and the receive id (corp id)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not token:
            raise InvalidAESKey("the callback Token is empty")
        self.token = token
        self.receive_id = receive_id
        self._key = aes_key(encoding_aes_key)

    def __repr__(self) -> str:  # never show the key or token
        return f"WeComCrypto(receive_id={self.receive_id!r})"

    # --- primitives --------------------------------------------------------------------------------------

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        return signature(self.token, timestamp, nonce, encrypt)

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = self.signature(timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode("ascii"), (msg_signature or "").lower().encode("utf-8")):
            raise InvalidSignature("msg_signature does not match: check the callback Token")

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def encrypt(self, plaintext: str | bytes, receive_id: str | None = None, *, prefix: bytes | None = None) -> str:
        """Encrypt a message the way WeCom does; `prefix` (16 bytes) is random unless given (tests)."""
        msg = plaintext.encode("utf-8") if isinstance(plaintext, str) else plaintext
        rid = (self.receive_id if receive_id is None else receive_id).encode("utf-8")
        head = os.urandom(RANDOM_PREFIX) if prefix is None else prefix
        if len(head) != RANDOM_PREFIX:
            raise ValueError("prefix must be 16 bytes")
        padded = pkcs7_pad(head + struct.pack(">I", len(msg)) + msg + rid)
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypt_b64: str, expected_receive_id: str | None = None) -> bytes:
        """Decrypt and check structure and receive id; returns the message bytes."""
        if len(encrypt_b64) > MAX_CIPHERTEXT_CHARS:
            raise InvalidCiphertext("ciphertext is too large")
        try:
            raw = base64.b64decode(encrypt_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidCiphertext("ciphertext is not base64") from exc
        if not raw or len(raw) % 16:
            raise InvalidCiphertext("ciphertext is not whole AES blocks")
        decryptor = self._cipher().decryptor()
        content = pkcs7_unpad(decryptor.update(raw) + decryptor.finalize())
        if len(content) < RANDOM_PREFIX + 4:
            raise InvalidCiphertext("decrypted message is too short")
        (length,) = struct.unpack(">I", content[RANDOM_PREFIX : RANDOM_PREFIX + 4])
        start = RANDOM_PREFIX + 4
        if start + length > len(content):
            raise InvalidCiphertext("length field exceeds the decrypted message")
        msg, rid = content[start : start + length], content[start + length :]
        expected = (self.receive_id if expected_receive_id is None else expected_receive_id).encode("utf-8")
        if not hmac.compare_digest(rid, expected):
            raise ReceiveIdMismatch("the message was encrypted for another corp id: check the workspace's corp id")
        return msg

    # --- the two callback requests -------------------------------------------------------------------------

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """GET verification: check the signature over echostr, return the decrypted echostr to send back.

        `echostr` is the URL-decoded query value (frameworks decode it; '+' must stay '+').
        """
        self.check_signature(msg_signature, timestamp, nonce, echostr)
        return self._text(self.decrypt(echostr))

    def decrypt_message(self, body: bytes | str, msg_signature: str, timestamp: str, nonce: str) -> str:
        """POST callback: read <Encrypt> from the XML body, check the signature, return the decrypted XML."""
        root = parse_xml(body)
        encrypt = child_text(root, "Encrypt")
        if not encrypt:
            raise MalformedCallback("callback body has no <Encrypt> element")
        self.check_signature(msg_signature, timestamp, nonce, encrypt)
        return self._text(self.decrypt(encrypt))

    def encrypt_message(self, plaintext: str, timestamp: str, nonce: str) -> str:
        """A passive reply (or a simulated callback body): the XML envelope with Encrypt and MsgSignature."""
        encrypt = self.encrypt(plaintext)
        sig = self.signature(timestamp, nonce, encrypt)
        return (
            f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{escape(timestamp)}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )

    @staticmethod
    def _text(msg: bytes) -> str:
        try:
            return msg.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidCiphertext("decrypted message is not UTF-8") from exc
