"""Journey templates from the seeds, ready to instantiate in any workspace (they name no workspace objects:
event types, profile fields and computed properties only). Operators then adjust texts, channels and
conditions in the builder before publishing.

Every send step uses the channel chosen when instantiating; the default is the sandbox, so a trial run
reaches nobody until someone chooses a real channel.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from siyu.delivery.models import Channel
from siyu.errors import validation_error


@dataclass(frozen=True)
class Template:
    key: str
    name: str  # English; the console shows the zh-CN names from its catalog
    name_zh: str
    description: str
    definition: dict[str, Any]


DAY = "10:00"

ONBOARDING: dict[str, Any] = {
    "trigger": {"event": "contact.added"},
    "entry": {"mode": "once"},
    "goal": {"event": "order.paid"},
    "steps": [
        {
            "id": "welcome",
            "name": "欢迎语",
            "type": "send",
            "text": "{name}，你好！欢迎加入，我是你的专属顾问，有问题随时找我。",
        },
        {"id": "day1", "name": "第 1 天 10:00", "type": "wait", "for": {"days": 1}, "until": DAY},
        {
            "id": "interest",
            "name": "兴趣匹配内容",
            "type": "send",
            "recommend": True,
            "text": "{name}，给你挑了几篇大家最爱看的内容，有空翻翻～",
        },
        {"id": "day3", "name": "第 3 天 10:00", "type": "wait", "for": {"days": 2}, "until": DAY},
        {
            "id": "consultant",
            "name": "顾问回访任务",
            "type": "task",
            "title": "第 3 天回访新客户 {name}",
            "detail": "了解需求、解答疑问，记录意向。",
            "due_in": {"hours": 8},
        },
        {"id": "day7", "name": "第 7 天 10:00", "type": "wait", "for": {"days": 4}, "until": DAY},
        {
            "id": "offer",
            "name": "新客优惠",
            "type": "send",
            "text": "{name}，新客专属优惠为你保留 3 天，回复「优惠」即可领取。",
            "welfare": True,
        },
    ],
}

TRAINING_CAMP: dict[str, Any] = {
    "trigger": {
        "event": "group.joined",
        "where": [{"property": "group_name", "op": "contains", "value": "训练营"}],
    },
    "entry": {"mode": "again_after_exit"},
    "goal": {"event": "order.paid"},
    "steps": [
        {"id": "open", "name": "开营", "type": "send", "text": "欢迎来到训练营！今晚 20:00 开营，记得准时来。"},
        {"id": "day2", "type": "wait", "for": {"days": 1}, "until": "19:00"},
        {
            "id": "lesson2",
            "name": "第 2 课",
            "type": "send",
            "text": "{name}，第 2 课今晚 20:00 开讲，作业别忘了交哦。",
        },
        {"id": "day3", "type": "wait", "for": {"days": 1}, "until": DAY},
        {
            "id": "engaged",
            "name": "转化日：是否参与",
            "type": "branch",
            "condition": {"event": "live.attended", "count": {"op": "gte", "value": 1}, "within_last_days": 3},
            "then": "hot_offer",
            "else": "warm_offer",
        },
        {
            "id": "hot_offer",
            "name": "转化日优惠",
            "type": "send",
            "text": "转化日专属：正式课限时优惠，今天 24 点截止。",
            "welfare": True,
            "next": "call",
        },
        {"id": "call", "name": "顾问跟进", "type": "task", "title": "转化日跟进 {name}", "next": None},
        {"id": "warm_offer", "name": "回放与优惠", "type": "send", "text": "错过了直播？回放已上线，看完可领优惠。"},
    ],
}

FESTIVAL: dict[str, Any] = {
    "trigger": {"schedule": "0 10 1 10 *", "audience": {"attribute": "created_at", "op": "is_set"}},
    "entry": {"mode": "every_n_days", "days": 300},
    "steps": [{"id": "greet", "name": "节日祝福", "type": "send", "text": "{name}，国庆快乐！祝你假期愉快。"}],
}

BIRTHDAY: dict[str, Any] = {
    "trigger": {"date": "birthday", "days_before": 0, "at": DAY},
    "entry": {"mode": "every_n_days", "days": 300},
    "steps": [
        {
            "id": "greet",
            "name": "生日祝福",
            "type": "send",
            "text": "{name}，生日快乐！送你一张生日专属券，本月有效。",
            "welfare": True,
        },
        {"id": "call", "name": "生日问候任务", "type": "task", "title": "给 {name} 送上生日问候"},
    ],
}

REPURCHASE: dict[str, Any] = {
    "trigger": {"event": "order.paid"},
    "entry": {"mode": "again_after_exit"},
    "goal": {"event": "referral.invited", "exit": True},
    "steps": [
        {"id": "thanks", "name": "感谢购买", "type": "send", "text": "{name}，感谢购买！使用中有任何问题随时找我。"},
        {"id": "week1", "type": "wait", "for": {"days": 7}, "until": DAY},
        {"id": "care", "name": "使用关怀", "type": "send", "text": "{name}，用了一周感觉怎么样？有心得欢迎分享。"},
        {"id": "week3", "type": "wait", "for": {"days": 14}, "until": DAY},
        {
            "id": "again",
            "name": "是否复购",
            "type": "branch",
            "condition": {"computed": "order_count", "op": "gte", "value": 2},
            "then": "referral",
            "else": "repurchase",
        },
        {
            "id": "repurchase",
            "name": "复购提醒",
            "type": "send",
            "text": "{name}，快用完了吧？老客复购享专属价。",
            "next": None,
        },
        {
            "id": "referral",
            "name": "转介绍邀请",
            "type": "send",
            "text": "{name}，推荐好友一起来，你和好友各得一份好礼。",
        },
    ],
}

WINBACK: dict[str, Any] = {
    "trigger": {"schedule": "0 10 * * 1", "audience": {"computed": "lifecycle_stage", "op": "eq", "value": "at_risk"}},
    "entry": {"mode": "every_n_days", "days": 30},
    "goal": {"event": "order.paid"},
    "steps": [
        {"id": "holdout", "name": "对照组 10%", "type": "holdout", "percent": 10},
        {
            "id": "offer",
            "name": "回归礼",
            "type": "send",
            "text": "{name}，好久不见！回归礼已放进你的账户，7 天内有效。",
            "welfare": True,
        },
        {
            "id": "wait_view",
            "name": "等待打开",
            "type": "wait_event",
            "event": "content.viewed",
            "timeout": {"days": 3},
            "on_event": "window",
            "on_timeout": "call",
        },
        {"id": "call", "name": "顾问回访", "type": "task", "title": "回访流失风险客户 {name}"},
        {"id": "window", "name": "观察 7 天", "type": "wait", "for": {"days": 7}},
    ],
}

LIVE_REMINDERS: dict[str, Any] = {
    "trigger": {"event": "form.submitted", "where": [{"property": "form", "op": "eq", "value": "live"}]},
    "entry": {"mode": "again_after_exit"},
    "goal": {"event": "live.attended"},
    "steps": [
        {"id": "morning", "name": "8:00", "type": "wait", "until": "08:00"},
        # reminders of what they signed up for: service messages, so the day's cap does not drop the second
        {
            "id": "remind_am",
            "name": "早间提醒",
            "type": "send",
            "text": "{name}，今晚 20:00 直播，记得来看！",
            "service": True,
        },
        {"id": "evening", "name": "19:00", "type": "wait", "until": "19:00"},
        {
            "id": "remind_pm",
            "name": "开播前提醒",
            "type": "send",
            "text": "还有 1 小时开播，点这里进直播间。",
            "service": True,
        },
    ],
}

TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in (
        Template(
            "onboarding",
            "New-customer onboarding",
            "新客户欢迎 SOP",
            "Welcome, interest-matched content on day 1, a consultant task on day 3, an offer on day 7; "
            "exits on a paid order.",
            ONBOARDING,
        ),
        Template(
            "training_camp",
            "Training camp with a conversion day",
            "训练营转化日",
            "Opening, a lesson reminder, then on conversion day an offer and a call for those who attended, "
            "the replay for the others.",
            TRAINING_CAMP,
        ),
        Template(
            "festival",
            "Festival greeting",
            "节日祝福",
            "Everyone gets a greeting at 10:00 on 1 October (change the cron for another festival).",
            FESTIVAL,
        ),
        Template(
            "birthday",
            "Birthday greeting",
            "生日祝福",
            "On the birthday at 10:00: a greeting with a coupon and a task for the owner.",
            BIRTHDAY,
        ),
        Template(
            "repurchase",
            "Post-purchase repurchase and referral",
            "复购与转介绍",
            "Thanks, care after a week, then a referral ask for repeat buyers and a repurchase nudge for the rest.",
            REPURCHASE,
        ),
        Template(
            "winback",
            "Win back at-risk customers",
            "流失预警挽回",
            "Every Monday, at-risk customers (lifecycle) get a comeback offer, 10 % held out to measure it; "
            "a call if they do not open it.",
            WINBACK,
        ),
        Template(
            "live_reminders",
            "Live stream reminders at 8:00 and 19:00",
            "直播提醒（8:00 / 19:00）",
            "After signing up for a live stream: a reminder at 8:00 and another at 19:00; exits when they attend.",
            LIVE_REMINDERS,
        ),
    )
}


def instantiate(key: str, channel: Channel = Channel.sandbox) -> dict[str, Any]:
    """A copy of the template's definition with every send step on `channel`."""
    template = TEMPLATES.get(key)
    if template is None:
        raise validation_error("template", f"no template {key!r}; use one of {', '.join(TEMPLATES)}")
    definition = copy.deepcopy(template.definition)
    for step in definition["steps"]:
        if step["type"] in ("send", "invite_group"):
            step["channel"] = channel.value
    return definition
