"""Why a delivery was skipped, held or failed: stable codes (API, filters, plan) with readable text.

The checks run in the order of CHECK_ORDER; the first that stops a delivery names it.
"""

from __future__ import annotations

NO_CONTACT = "no_contact"
CONTENT_UNAVAILABLE = "content_unavailable"
OPTED_OUT = "opted_out"
NO_ADDRESS = "no_address"
QUIET_HOURS = "quiet_hours"
CAP_DAY = "cap_day"
CAP_WEEK = "cap_week"
CAP_MONTH = "cap_month"
WELFARE_DAYS = "welfare_days"
STAFF_LIMIT = "staff_limit"
# after acceptance, from the channel
SEND_FAILED = "send_failed"
DEAD_LETTER = "dead_letter"
OUTCOME_UNKNOWN = "outcome_unknown"
# on a queued delivery: accepted and counted, but the caller sends it itself (a WeCom broadcast task) and
# reports the outcome (siyu.delivery.service.record_outcomes); no delivery.send job sends it
SENT_BY_CALLER = "sent_by_caller"

CHECK_ORDER = (
    NO_CONTACT,
    CONTENT_UNAVAILABLE,
    OPTED_OUT,
    NO_ADDRESS,
    QUIET_HOURS,
    CAP_DAY,
    CAP_WEEK,
    CAP_MONTH,
    WELFARE_DAYS,
    STAFF_LIMIT,
)

TEXT: dict[str, str] = {
    NO_CONTACT: "no such contact in this workspace (deleted, or merged into another profile)",
    CONTENT_UNAVAILABLE: "the content item is missing or not published",
    OPTED_OUT: "the contact opted out (an unsubscribe reply or the API)",
    NO_ADDRESS: "the contact cannot be reached on this channel",
    QUIET_HOURS: "quiet hours in the contact's time zone",
    CAP_DAY: "the contact's daily message cap is reached",
    CAP_WEEK: "the contact's weekly message cap is reached",
    CAP_MONTH: "the contact's monthly message cap is reached",
    WELFARE_DAYS: "welfare content already went out on the most days allowed this month",
    STAFF_LIMIT: "the sending staff account reached its daily limit (warm-up included)",
    SEND_FAILED: "the channel refused the message",
    DEAD_LETTER: "the channel kept failing; out of attempts",
    OUTCOME_UNKNOWN: "a call was made but its result was lost; not repeated, so at most once",
    SENT_BY_CALLER: "accepted; its sender (e.g. a WeCom broadcast task) sends it and reports the outcome",
}

ALL = tuple(TEXT)


def text_of(code: str | None) -> str | None:
    return TEXT.get(code, code) if code is not None else None
