"""E-mail through SMTP (the standard library's smtplib), one message per delivery.

The Message-ID names the delivery (`<delivery-<id>.siyu@<sender domain>>`), so a message sent again after
a crash carries the same id and mail systems and readers can see it is one message. SMTP 5xx replies and
refused recipients are permanent; 4xx replies and connection failures are worth retrying.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool
    ssl: bool
    sender: str
    timeout: float


@dataclass(frozen=True)
class EmailResult:
    ok: bool
    retryable: bool
    error: str | None


def message_id(delivery_id: int, sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "siyu.local"
    return f"<delivery-{delivery_id}.siyu@{domain}>"


def build(
    config: SmtpConfig, *, delivery_id: int, to: str, subject: str, text: str, unsubscribe: str | None = None
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(delivery_id, config.sender)
    if unsubscribe:
        message["List-Unsubscribe"] = unsubscribe
    message.set_content(text)
    return message


def send(config: SmtpConfig, message: EmailMessage) -> EmailResult:
    try:
        if config.ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with smtp:
            if config.starttls and not config.ssl:
                smtp.starttls(context=ssl.create_default_context())
            if config.username:
                smtp.login(config.username, config.password or "")
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        return EmailResult(False, False, f"recipient refused: {exc.recipients}"[:300])
    except smtplib.SMTPResponseException as exc:
        permanent = 500 <= exc.smtp_code < 600
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return EmailResult(False, not permanent, f"SMTP {exc.smtp_code}: {text}"[:300])
    except (smtplib.SMTPException, OSError) as exc:
        return EmailResult(False, True, f"{type(exc).__name__}: {exc}"[:300])
    return EmailResult(True, False, None)
