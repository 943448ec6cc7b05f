"""Which column means what. A mapping is {header: target}; targets are

name, owner, source_channel, first_consult_at, consult_question, region, occupation, gender, birthday
identity:<type>      phone, wechat_unionid, email, ... or a custom type
attr:<key>           a declared custom attribute
tags                 cells list tag names ("A级, 老客户" or "意向:A级")
tags:<group name>    cells list tags of that group ("A级")
note                 the text becomes a note on the contact
null                 ignore the column
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from siyu.contacts.identities import STANDARD_IDENTITY_TYPES, IdentityError, check_type
from siyu.contacts.models import AttributeDefinition
from siyu.errors import ValidationFailed

PROFILE_TARGETS = (
    "name",
    "owner",
    "source_channel",
    "first_consult_at",
    "consult_question",
    "region",
    "occupation",
    "gender",
    "birthday",
)
MULTI_TARGETS = ("tags", "note")  # several columns may feed these (and identities)

# Normalised header (lower case, no spaces, no "*" or "(必填)") -> target. None: known, deliberately ignored.
GUESSES: dict[str, str | None] = {}


def _guess(target: str | None, *headers: str) -> None:
    for header in headers:
        GUESSES[header] = target


_guess("name", "姓名", "客户姓名", "客户名称", "客户名", "名字", "称呼", "联系人", "name", "customername", "fullname")
_guess(
    "identity:phone",
    "手机",
    "手机号",
    "手机号码",
    "电话",
    "电话号码",
    "联系电话",
    "联系方式",
    "移动电话",
    "phone",
    "mobile",
    "tel",
    "telephone",
    "phonenumber",
)
# A 微信号 is the ID a user picks, not the UnionID WeChat issues: kept as its own (custom) identity type
# so it never collides with real UnionIDs arriving from WeCom.
_guess("identity:wechat_id", "微信", "微信号", "微信id", "wechat", "wechatid", "wxid")
_guess("identity:wechat_unionid", "unionid", "微信unionid", "wechat_unionid", "wechatunionid")
_guess("identity:wechat_openid", "openid", "微信openid", "wechat_openid")
_guess("identity:wecom_external_userid", "external_userid", "externaluserid", "企微id", "企业微信id")
_guess("identity:email", "邮箱", "电子邮箱", "邮件", "email", "e-mail", "mail")
_guess("identity:douyin_open_id", "抖音openid", "douyin_open_id")
_guess("identity:douyin_id", "抖音", "抖音号", "douyin")
_guess("identity:xiaohongshu_id", "小红书", "小红书号", "小红书id", "xiaohongshu", "xiaohongshu_id")
_guess("identity:taobao_nick", "淘宝", "淘宝昵称", "淘宝账号", "旺旺", "旺旺号", "taobao", "taobao_nick")
_guess("identity:external_id", "external_id", "会员号", "会员编号", "客户编号")
_guess("region", "地区", "城市", "地域", "所在地", "所在地区", "所在城市", "省份", "区域", "region", "city", "location")
_guess("occupation", "职业", "工作", "职位", "行业", "occupation", "job", "profession")
_guess("gender", "性别", "gender", "sex")
_guess("birthday", "生日", "出生日期", "出生年月日", "birthday", "birthdate", "dateofbirth", "dob")
_guess("source_channel", "来源", "渠道", "来源渠道", "客户来源", "获客渠道", "source", "channel", "source_channel")
_guess("first_consult_at", "首次咨询时间", "首次咨询", "咨询时间", "首咨时间", "firstconsult", "first_consult_at")
_guess("consult_question", "咨询问题", "咨询内容", "问题", "需求", "consult_question", "question")
_guess("note", "备注", "备注信息", "说明", "note", "notes", "remark", "remarks", "comment")
_guess("tags", "标签", "客户标签", "tags", "tag", "labels")
_guess(
    "owner",
    "负责人",
    "归属",
    "归属人",
    "所属员工",
    "员工",
    "顾问",
    "课程顾问",
    "销售",
    "跟进人",
    "添加人",
    "owner",
    "staff",
    "owneremail",
    "owner_email",
)
# Columns of siyu's own export and error file that are not imported.
_guess(None, "id", "created_at", "创建时间", "owner_name", "row", "error", "错误", "行号")

_NOISE = re.compile(r"[\s*＊:：]|[(（][^)）]*[)）]")


def normalise_header(header: str) -> str:
    return _NOISE.sub("", header).lower()


@dataclass(frozen=True)
class Column:
    index: int
    header: str
    kind: str  # profile field name, "identity", "attr", "tags", "note"
    arg: str | None = None  # identity type, attribute key or tag group name


def guess_mapping(
    headers: Iterable[str], defs: Mapping[str, AttributeDefinition], group_names: Iterable[str] = ()
) -> dict[str, str | None]:
    """A target for each header the guess recognises (null for the others). A single-valued target is
    given to its first column only."""
    by_label = {normalise_header(d.label): key for key, d in defs.items()}
    by_key = {normalise_header(key): key for key in defs}
    groups = {normalise_header(name): name for name in group_names}
    standard = {t: f"identity:{t}" for t in STANDARD_IDENTITY_TYPES}
    result: dict[str, str | None] = {}
    taken: set[str] = set()
    for header in headers:
        norm = normalise_header(header)
        target: str | None
        if header.startswith(("identity:", "attr:", "tags:")):
            target = header
        elif norm in by_key:
            target = f"attr:{by_key[norm]}"
        elif norm in by_label:
            target = f"attr:{by_label[norm]}"
        elif norm in standard:
            target = standard[norm]
        elif norm in GUESSES:
            target = GUESSES[norm]
        elif norm in groups:
            target = f"tags:{groups[norm]}"
        else:
            target = None
        if target is not None and _single(target):
            if target in taken:
                target = None
            else:
                taken.add(target)
        result[header] = target
    return result


def _single(target: str) -> bool:
    return not (target.startswith(("identity:", "tags")) or target == "note")


def parse_mapping_json(raw: Any) -> dict[str, str | None]:
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise ValidationFailed(
            "mapping: must be a JSON object {column header: target or null}",
            details=[{"field": "mapping", "reason": "must be a JSON object {column header: target or null}"}],
        )
    for key, value in raw.items():
        if value is not None and not isinstance(value, str):
            raise ValidationFailed(
                f"mapping: the target of {key!r} must be a string or null",
                details=[{"field": f"mapping.{key}", "reason": "must be a string or null"}],
            )
    return dict(raw)


def resolve_mapping(
    headers: list[str],
    given: Mapping[str, str | None] | None,
    defs: Mapping[str, AttributeDefinition],
    group_names: Iterable[str] = (),
) -> tuple[dict[str, str | None], list[Column]]:
    """The guess with the given mapping laid over it, checked; returns it and the columns to read."""
    mapping = guess_mapping(headers, defs, group_names)
    problems: list[dict[str, Any]] = []
    for header, target in (given or {}).items():
        if header not in mapping:
            problems.append({"field": f"mapping.{header}", "reason": "the file has no column with this header"})
            continue
        mapping[header] = target or None
    if given:
        # A target given explicitly takes precedence over a guess of the same single-valued target.
        explicit = {t for t in given.values() if t and _single(t)}
        for header, target in mapping.items():
            if target in explicit and header not in given:
                mapping[header] = None
    columns: list[Column] = []
    seen: dict[str, str] = {}
    for index, header in enumerate(headers):
        target = mapping[header]
        if target is None:
            continue
        column, reason = _column(index, header, target, defs)
        if column is None:
            problems.append({"field": f"mapping.{header}", "reason": reason})
            continue
        if _single(target):
            if target in seen:
                problems.append(
                    {
                        "field": f"mapping.{header}",
                        "reason": f"columns {seen[target]!r} and {header!r} are both mapped to {target}; "
                        "map one of them to null",
                    }
                )
                continue
            seen[target] = header
        columns.append(column)
    if problems:
        raise ValidationFailed("; ".join(f"{p['field']}: {p['reason']}" for p in problems), details=problems)
    return mapping, columns


def _column(index: int, header: str, target: str, defs: Mapping[str, AttributeDefinition]) -> tuple[Column | None, str]:
    if target in PROFILE_TARGETS or target in MULTI_TARGETS:
        return Column(index, header, target), ""
    kind, _, arg = target.partition(":")
    if kind == "identity":
        try:
            check_type(arg)
        except IdentityError as exc:
            return None, str(exc)
        return Column(index, header, "identity", arg), ""
    if kind == "attr":
        if arg not in defs:
            known = ", ".join(defs) or "none yet"
            return None, f"attribute {arg!r} is not declared (declared: {known}); declare it at /api/v1/attributes"
        return Column(index, header, "attr", arg), ""
    if kind == "tags" and arg:
        return Column(index, header, "tags", arg.strip()), ""
    return None, (
        f"unknown target {target!r}; use one of {', '.join(PROFILE_TARGETS)}, identity:<type>, attr:<key>, "
        "tags, tags:<group>, note, or null"
    )
