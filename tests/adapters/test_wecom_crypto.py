"""WeCom callback crypto against the official sample vectors, plus every way a callback is rejected.

Official vectors: the Sample.py files of WeCom's own callback SDK for Python (repository
sbzhu/weworkapi_python, linked from the WeCom docs' "加解密库下载与返回码" page):
- callback/Sample.py: Token hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo, EncodingAESKey
  6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt, CorpID ww1436e0e65a779aee; a URL verification
  (msg_signature 012bc692…, timestamp 1476416373, nonce 47744683) and an encrypted XML text message
  (msg_signature 0c391402…, timestamp 1476422779, nonce 1597212914);
- the older 企业号 sample in the same SDK family's comments: Token QDG6eK, EncodingAESKey
  jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C, CorpID wx5823bf96d3bd56c7, a URL-encoded echostr.
The samples do not print the expected plaintexts; the values asserted below are what these inputs
decrypt to, and they are self-evidently right (a 19-digit echostr; a text message "你好" to the same corp id
whose CreateTime equals the request timestamp).
"""

from __future__ import annotations

import base64
import hashlib
import struct
import urllib.parse

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from siyu.adapters.wecom import crypto as wc
from siyu.adapters.wecom.crypto import WeComCrypto
from siyu.adapters.wecom.errors import (
    InvalidAESKey,
    InvalidCiphertext,
    InvalidSignature,
    MalformedCallback,
    ReceiveIdMismatch,
)

TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
CORP_ID = "ww1436e0e65a779aee"

VERIFY = {
    "msg_signature": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    "timestamp": "1476416373",
    "nonce": "47744683",
    "echostr": "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
}
VERIFY_PLAINTEXT = "1288432023552776189"

POST_SIGNATURE = "0c3914025cb4b4d68103f6bfc8db550f79dcf48e"
POST_TIMESTAMP = "1476422779"
POST_NONCE = "1597212914"
POST_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew"
    "+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24Yhm"
    "ZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwo"
    "cugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
)
POST_BODY = (
    f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>\n<Encrypt><![CDATA[{POST_ENCRYPT}]]></Encrypt>\n"
    "<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
)
POST_PLAINTEXT = (
    "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
    "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
    "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
)


@pytest.fixture
def crypto() -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, CORP_ID)


# --- official vectors -------------------------------------------------------------------------------------


def test_official_signature_vectors() -> None:
    assert wc.signature(TOKEN, VERIFY["timestamp"], VERIFY["nonce"], VERIFY["echostr"]) == VERIFY["msg_signature"]
    assert wc.signature(TOKEN, POST_TIMESTAMP, POST_NONCE, POST_ENCRYPT) == POST_SIGNATURE


def test_official_url_verification(crypto: WeComCrypto) -> None:
    assert crypto.verify_url(**VERIFY) == VERIFY_PLAINTEXT


def test_official_message_decryption(crypto: WeComCrypto) -> None:
    assert crypto.decrypt_message(POST_BODY, POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE) == POST_PLAINTEXT
    assert crypto.decrypt_message(POST_BODY.encode(), POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE) == POST_PLAINTEXT


def test_official_legacy_qiyehao_sample_with_url_encoded_echostr() -> None:
    legacy = WeComCrypto("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
    quoted = "P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
    echostr = urllib.parse.unquote(quoted)
    assert legacy.verify_url("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780", echostr) == (
        "1616140317555161061"
    )


# --- independent derivation with the bare primitives -----------------------------------------------------


def _reference_encrypt(key_b64: str, msg: bytes, receive_id: bytes, prefix: bytes) -> str:
    """The scheme written out from the spec with hashlib/cryptography directly, not via crypto.py."""
    key = base64.b64decode(key_b64 + "=")
    plain = prefix + struct.pack(">I", len(msg)) + msg + receive_id
    n = 32 - len(plain) % 32
    plain += bytes([n]) * n
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def test_encrypt_matches_the_reference_derivation(crypto: WeComCrypto) -> None:
    prefix = bytes(range(16))
    msg = "<xml><Content>添加客户</Content></xml>".encode()
    expected = _reference_encrypt(AES_KEY, msg, CORP_ID.encode(), prefix)
    assert crypto.encrypt(msg, prefix=prefix) == expected
    assert crypto.decrypt(expected) == msg
    sig = hashlib.sha1("".join(sorted([TOKEN, "1700000000", "nonce", expected])).encode()).hexdigest()
    assert crypto.signature("1700000000", "nonce", expected) == sig


@pytest.mark.parametrize("size", [0, 1, 11, 12, 31, 32, 100, 5000])
def test_round_trip_every_padding_length(crypto: WeComCrypto, size: int) -> None:
    msg = ("x" * size).encode()
    assert crypto.decrypt(crypto.encrypt(msg)) == msg


def test_encrypt_message_envelope_decrypts(crypto: WeComCrypto) -> None:
    envelope = crypto.encrypt_message("<xml><A>1</A></xml>", "1700000000", "42")
    from siyu.adapters.wecom._xml import child_text, parse_xml

    sig = child_text(parse_xml(envelope), "MsgSignature")
    assert sig is not None
    assert crypto.decrypt_message(envelope, sig, "1700000000", "42") == "<xml><A>1</A></xml>"


# --- rejections ---------------------------------------------------------------------------------------------


def test_bad_signature_rejected(crypto: WeComCrypto) -> None:
    with pytest.raises(InvalidSignature):
        crypto.verify_url(**{**VERIFY, "msg_signature": "0" * 40})
    with pytest.raises(InvalidSignature):
        crypto.verify_url(**{**VERIFY, "nonce": "47744684"})  # signature covers the nonce
    with pytest.raises(InvalidSignature):
        crypto.decrypt_message(POST_BODY, POST_SIGNATURE, "1476422780", POST_NONCE)
    with pytest.raises(InvalidSignature):
        WeComCrypto("another-token", AES_KEY, CORP_ID).verify_url(**VERIFY)


def test_tampered_body_rejected_by_signature(crypto: WeComCrypto) -> None:
    tampered = POST_BODY.replace(POST_ENCRYPT[:8], "Ll7kjoSf")
    with pytest.raises(InvalidSignature):
        crypto.decrypt_message(tampered, POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE)


def test_tampered_ciphertext_with_a_recomputed_signature_is_still_rejected(crypto: WeComCrypto) -> None:
    """Someone who knows the token but not the AES key: the plaintext structure gives it away."""
    raw = bytearray(base64.b64decode(POST_ENCRYPT))
    raw[-1] ^= 0x01  # breaks the padding of the last block
    forged = base64.b64encode(bytes(raw)).decode()
    with pytest.raises((InvalidCiphertext, ReceiveIdMismatch)):
        crypto.decrypt(forged)
    raw = bytearray(base64.b64decode(POST_ENCRYPT))
    raw[-20] ^= 0x01  # flips a byte of the receive id in the last block
    with pytest.raises((InvalidCiphertext, ReceiveIdMismatch)):
        crypto.decrypt(base64.b64encode(bytes(raw)).decode())


def test_wrong_corp_id_rejected(crypto: WeComCrypto) -> None:
    other = WeComCrypto(TOKEN, AES_KEY, "wwOTHERCORP")
    with pytest.raises(ReceiveIdMismatch):
        other.verify_url(**VERIFY)
    with pytest.raises(ReceiveIdMismatch):
        crypto.decrypt(crypto.encrypt("hi", receive_id="wwOTHERCORP"))


def test_wrong_aes_key_rejected() -> None:
    wrong = WeComCrypto(TOKEN, "a" * 43, CORP_ID)
    with pytest.raises((InvalidCiphertext, ReceiveIdMismatch)):
        wrong.verify_url(**VERIFY)


@pytest.mark.parametrize("pad", [0, 33, 255])
def test_bad_padding_rejected(crypto: WeComCrypto, pad: int) -> None:
    key = base64.b64decode(AES_KEY + "=")
    plain = bytes(16) + struct.pack(">I", 2) + b"hi" + CORP_ID.encode()
    plain += bytes([7]) * (64 - len(plain) - 1) + bytes([pad])
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    with pytest.raises(InvalidCiphertext, match="padding"):
        crypto.decrypt(base64.b64encode(enc.update(plain) + enc.finalize()).decode())


def test_inconsistent_padding_bytes_rejected(crypto: WeComCrypto) -> None:
    key = base64.b64decode(AES_KEY + "=")
    plain = bytes(16) + struct.pack(">I", 2) + b"hi" + CORP_ID.encode()
    n = 64 - len(plain)
    plain += bytes([1]) * (n - 1) + bytes([n])  # claims n bytes of padding, but they are not all n
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    with pytest.raises(InvalidCiphertext, match="padding"):
        crypto.decrypt(base64.b64encode(enc.update(plain) + enc.finalize()).decode())


def test_length_field_beyond_the_message_rejected(crypto: WeComCrypto) -> None:
    key = base64.b64decode(AES_KEY + "=")
    plain = bytes(16) + struct.pack(">I", 10_000) + b"hi" + CORP_ID.encode()
    n = 32 - len(plain) % 32
    plain += bytes([n]) * n
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    with pytest.raises(InvalidCiphertext, match="length"):
        crypto.decrypt(base64.b64encode(enc.update(plain) + enc.finalize()).decode())


@pytest.mark.parametrize("bad", ["not base64!!", "", "AAAA", base64.b64encode(b"x" * 17).decode()])
def test_malformed_ciphertext_rejected(crypto: WeComCrypto, bad: str) -> None:
    with pytest.raises(InvalidCiphertext):
        crypto.decrypt(bad)


def test_body_without_encrypt_or_with_a_doctype_rejected(crypto: WeComCrypto) -> None:
    with pytest.raises(MalformedCallback):
        crypto.decrypt_message("<xml><ToUserName>x</ToUserName></xml>", POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE)
    evil = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>'
    with pytest.raises(MalformedCallback):
        crypto.decrypt_message(evil, POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE)
    with pytest.raises(MalformedCallback):
        crypto.decrypt_message("<xml><Encrypt>", POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE)


@pytest.mark.parametrize("key", ["short", "!" * 43, "a" * 44])
def test_invalid_encoding_aes_key_refused(key: str) -> None:
    with pytest.raises(InvalidAESKey):
        WeComCrypto(TOKEN, key, CORP_ID)


def test_repr_hides_secrets(crypto: WeComCrypto) -> None:
    assert TOKEN not in repr(crypto) and AES_KEY not in repr(crypto)
