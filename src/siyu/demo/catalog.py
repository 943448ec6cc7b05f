"""What the demo brand sells, where its people come from, and how they behave.

Seed 004 sorts industries by consumption frequency and by how much of the business happens online.
The demo runs one business line for each of the four types:

| line | frequency | online | why |
|---|---|---|---|
| 美妆护肤 (skin care) | high | high | low price, quick decisions, live-stream sales, repurchase pool |
| 母婴 (mother and baby) | high | low | frequent small buys, local store and community events |
| 教育培训 (adult education) | low | high | high price, long decisions, content and live classes online |
| 家装 (home decoration) | low | low | very high price, long decisions, trust built offline |
"""

from __future__ import annotations

from dataclasses import dataclass

from siyu.channels.models import ChannelKind, Rotation


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    kind: ChannelKind
    name: str  # the channel's name; the code is named "<name>活码"
    share: float  # of the line's arrivals
    weekly_cost: int  # yuan
    rotation: Rotation
    daily_cap: int | None  # per consultant per day at the default size (scaled with --contacts)
    hours: tuple[str, str] | None  # consultants' online hours on this code
    welcome: str
    interest: str | None = None  # an interest tag the code puts on


@dataclass(frozen=True, slots=True)
class Product:
    name: str
    price: float


@dataclass(frozen=True, slots=True)
class Industry:
    key: str
    name: str
    frequency: str  # "high" or "low" consumption frequency
    online: str  # "high" or "low" online degree
    share: float  # of all arrivals
    consultants: tuple[str, ...]  # the first one leads the others and takes the overflow (backup)
    channels: tuple[ChannelPlan, ...]
    interests: tuple[str, ...]
    contents: tuple[str, ...]
    groups: tuple[str, ...]
    products: tuple[Product, ...]
    convert: float  # share of people who order at all within the weeks
    first_order_days: tuple[float, float]  # days after arrival of the first order
    repeat: float  # chance of one more order after each order
    repeat_days: tuple[float, float]  # days between orders
    views: float  # mean content views per week of presence
    join_group: float
    lives: float  # mean live streams attended per week (0: no live streams)
    questions: tuple[str, ...]
    peak_hours: tuple[int, ...]  # local hours people arrive most


INDUSTRIES: tuple[Industry, ...] = (
    Industry(
        key="beauty",
        name="美妆护肤",
        frequency="high",
        online="high",
        share=0.35,
        consultants=("林晓雯", "陈思琪", "王梦瑶", "赵雨桐"),
        channels=(
            ChannelPlan(
                ChannelKind.douyin,
                "美妆-抖音直播间",
                0.5,
                8000,
                Rotation.weighted,
                6,
                None,
                "欢迎来到直播间福利群！回复「皮肤」领取专属护肤方案～",
                "美白",
            ),
            ChannelPlan(
                ChannelKind.xiaohongshu,
                "美妆-小红书笔记",
                0.3,
                3000,
                Rotation.round_robin,
                5,
                None,
                "谢谢关注！这是笔记里提到的小样申领链接。",
                "抗老",
            ),
            ChannelPlan(
                ChannelKind.referral,
                "美妆-老带新",
                0.2,
                500,
                Rotation.round_robin,
                None,
                None,
                "你的好友送你一张 30 元新人券，已放入卡包。",
            ),
        ),
        interests=("美白", "抗老", "敏感肌", "彩妆"),
        contents=("c-beauty-serum-guide", "c-beauty-sunscreen", "c-beauty-live-0800", "c-beauty-case-acne"),
        groups=("美妆福利群", "直播通知群"),
        products=(
            Product("精华液 30ml", 299),
            Product("防晒霜", 129),
            Product("面膜 10 片", 89),
            Product("洁面乳", 59),
        ),
        convert=0.42,
        first_order_days=(0.2, 10),
        repeat=0.55,
        repeat_days=(6, 16),
        views=4.0,
        join_group=0.65,
        lives=1.2,
        questions=(
            "敏感肌可以用这款精华吗？",
            "直播间的优惠券怎么领？",
            "油皮夏天用哪款防晒？",
            "孕期可以用吗？",
            "有没有适合学生党的平价套装？",
        ),
        peak_hours=(12, 20, 21, 22),
    ),
    Industry(
        key="baby",
        name="母婴",
        frequency="high",
        online="low",
        share=0.25,
        consultants=("周敏", "吴佳慧", "郑丽娜", "孙婷"),
        channels=(
            ChannelPlan(
                ChannelKind.offline_flyer,
                "母婴-门店传单",
                0.4,
                1200,
                Rotation.round_robin,
                4,
                ("09:00", "21:00"),
                "欢迎宝妈！到店出示本消息领取试用装一份。",
                "奶粉",
            ),
            ChannelPlan(
                ChannelKind.event,
                "母婴-社区亲子活动",
                0.3,
                2500,
                Rotation.least_loaded,
                4,
                ("09:00", "21:00"),
                "感谢参加亲子活动！活动照片会发在宝妈交流群。",
                "早教",
            ),
            ChannelPlan(
                ChannelKind.douyin,
                "母婴-抖音同城",
                0.3,
                4000,
                Rotation.weighted,
                5,
                None,
                "同城宝妈专享：周末门店满 199 减 30。",
                "辅食",
            ),
        ),
        interests=("奶粉", "早教", "辅食", "纸尿裤"),
        contents=("c-baby-feeding-guide", "c-baby-sleep", "c-baby-store-event", "c-baby-case-allergy"),
        groups=("宝妈交流群", "门店福利群"),
        products=(
            Product("奶粉 800g", 268),
            Product("纸尿裤 L 码", 139),
            Product("辅食米粉", 49),
            Product("早教体验课", 99),
        ),
        convert=0.36,
        first_order_days=(1, 12),
        repeat=0.5,
        repeat_days=(8, 20),
        views=1.5,
        join_group=0.4,
        lives=0.0,
        questions=(
            "宝宝六个月可以吃什么辅食？",
            "门店周末几点开门？",
            "奶粉转段要注意什么？",
            "纸尿裤红屁屁怎么办？",
            "亲子活动还能报名吗？",
        ),
        peak_hours=(10, 11, 15, 16, 19),
    ),
    Industry(
        key="education",
        name="教育培训",
        frequency="low",
        online="high",
        share=0.25,
        consultants=("刘建国", "黄志强", "徐静", "何雪"),
        channels=(
            ChannelPlan(
                ChannelKind.zhihu,
                "教育-知乎回答",
                0.35,
                2000,
                Rotation.round_robin,
                5,
                ("09:00", "23:00"),
                "送你一份《备考 90 天计划表》，回复「计划」领取。",
                "考研",
            ),
            ChannelPlan(
                ChannelKind.douyin,
                "教育-抖音直播课",
                0.4,
                6000,
                Rotation.weighted,
                6,
                ("09:00", "23:00"),
                "今晚 19:00 公开课，进群获取上课链接。",
                "职场技能",
            ),
            ChannelPlan(
                ChannelKind.baidu,
                "教育-百度搜索",
                0.25,
                5000,
                Rotation.least_loaded,
                4,
                ("09:00", "21:00"),
                "您好，我是课程顾问，可以先做个免费的水平测试。",
                "英语",
            ),
        ),
        interests=("考研", "英语", "职场技能", "考公"),
        contents=("c-edu-plan-90", "c-edu-open-class", "c-edu-case-offer", "c-edu-faq"),
        groups=("公开课学习群", "备考打卡群"),
        products=(Product("9.9 元体验课", 9.9), Product("系统班", 3980), Product("全程班", 12800)),
        convert=0.14,
        first_order_days=(2, 25),
        repeat=0.25,
        repeat_days=(7, 21),
        views=3.0,
        join_group=0.55,
        lives=0.8,
        questions=(
            "零基础能跟上吗？",
            "在职备考每天要学多久？",
            "可以分期付款吗？",
            "没考过能退费吗？",
            "老师是哪里毕业的？",
        ),
        peak_hours=(12, 19, 20, 21, 22),
    ),
    Industry(
        key="home",
        name="家装",
        frequency="low",
        online="low",
        share=0.15,
        consultants=("马国栋", "杨帆", "朱晓峰", "高磊"),
        channels=(
            ChannelPlan(
                ChannelKind.offline_flyer,
                "家装-小区地推",
                0.35,
                1500,
                Rotation.round_robin,
                2,
                ("09:00", "19:00"),
                "业主您好，免费上门量房，回复小区名即可预约。",
                "旧房改造",
            ),
            ChannelPlan(
                ChannelKind.event,
                "家装-样板间开放日",
                0.35,
                6000,
                Rotation.least_loaded,
                3,
                ("09:00", "19:00"),
                "感谢参观样板间！这是本期的工地直播链接。",
                "全包装修",
            ),
            ChannelPlan(
                ChannelKind.baidu,
                "家装-百度搜索广告",
                0.3,
                7000,
                Rotation.weighted,
                3,
                ("09:00", "21:00"),
                "您好，可以先发一下户型图，设计师给您出免费方案。",
                "软装",
            ),
        ),
        interests=("全包装修", "软装", "旧房改造", "智能家居"),
        contents=("c-home-budget", "c-home-showroom", "c-home-case-90sqm", "c-home-site-live"),
        groups=("业主交流群", "工地直播群"),
        products=(Product("设计定金", 2000), Product("半包套餐", 68000), Product("全包套餐", 138000)),
        convert=0.06,
        first_order_days=(5, 35),
        repeat=0.2,
        repeat_days=(10, 30),
        views=1.0,
        join_group=0.3,
        lives=0.0,
        questions=(
            "90 平米全包大概多少钱？",
            "可以先出设计方案吗？",
            "工期一般多久？",
            "用的是什么品牌的板材？",
            "老房子水电要全部换吗？",
        ),
        peak_hours=(10, 14, 15, 16, 20),
    ),
)

INTENTION_LEVELS = ("A级-强意向", "B级-有意向", "C级-观望", "D级-无意向")
# Seed 004's user tiers: loyal, high-quality, ordinary, low-frequency, lost.
CUSTOMER_TIERS = ("忠诚用户", "优质用户", "普通用户", "低频用户", "流失用户")
