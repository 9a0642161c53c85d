#!/usr/bin/env python3
"""Seeded generator of canonical record files for Haat's analysis cross-check.

  scripts/analysis/generate.py --seed 7 --posts 20000 --orders 5000 --messages 8000 \
      --reviews 3000 --ads 2000 --out DIR

Writes, per docs/formats.md, posts (CSV and NDJSON), orders (CSV and NDJSON), messages
(NDJSON and CSV), reviews (the Judge.me and Yotpo headers and a canonical one) and ad
insights (CSV), with the quirks real exports have (BOM, CRLF, multi-line quoted captions,
grouped and quoted counts, reordered and upper-case headers, unknown columns, media type
synonyms, missing counts, varied UTC offsets, mixed-case and percent-encoded UTM tags,
click ids, referrers of every kind, several currencies) and a few deliberately bad rows
of every kind the docs name. Every row is either valid or deliberately bad per the docs.

For the reports over customers (cohorts, clv) the orders come from simulated customers who
return as BG/NBD says and spend as Gamma-Gamma says (order_events), over 18 months, one
store (platform x account x currency) each, with guests, a few orders in another currency,
orders within hours or at the same second; one orders source names a time zone. For
media_lift some accounts' media types get more or fewer likes than their text posts
(LIKE_LIFT), and TikTok has no text posts.

It also writes DIR/manifest.json: one entry per file with the source a job spec gives it
(name, kind, format, platform, account, and timezone/business_hours where set), and
DIR/spec.json, a job spec over the files as file:// URLs naming the reports checked
(scripts/analysis/run writes its own from the manifest).

Standard library only; the same arguments give the same bytes.
"""

import argparse
import datetime as dt
import json
import math
import os
import random

EPOCH_START = int(dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc).timestamp())
EPOCH_END = int(dt.datetime(2026, 6, 28, tzinfo=dt.timezone.utc).timestamp())

REPORTS = ["engagement", "best_time", "attribution", "reviews", "ads", "audience", "response_time",
           "media_lift", "frequency", "cohorts", "clv"]

# Orders reach further back than posts, so cohorts have months to return in and the CLV
# models a long history (18 months).
ORDER_START = int(dt.datetime(2025, 1, 6, tzinfo=dt.timezone.utc).timestamp())
WEEK = 7 * 86400

# Likes of some accounts' media types against their text posts (media_lift): the verdicts
# then range over "more", "fewer" and "cannot say" (TikTok has no text posts: "no text").
LIKE_LIFT = {
    "dhaka_threads": {"image": 1.6, "video": 1.25},
    "chittagong_tea": {"carousel": 0.55},
    "karachi_kitchen": {"video": 1.8, "image": 0.7},
    "nyc_bagels": {"image": 2.0},
    "mumbai_masala": {"video": 0.5},
}


# ---------------------------------------------------------------- text helpers


def csv_field(value, quote=False):
    """One CSV field: quoted when it must be (comma, quote, CR, LF) or when asked."""
    if value is None:
        value = ""
    value = str(value)
    if quote or any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_line(fields, rng, quote_all=False, eol="\n"):
    return ",".join(csv_field(f, quote_all or rng.random() < 0.03) for f in fields) + eol


def offset_text(minutes, style="colon"):
    if minutes == 0 and style == "z":
        return "Z"
    sign = "+" if minutes >= 0 else "-"
    m = abs(minutes)
    if style == "nocolon":
        return f"{sign}{m // 60:02d}{m % 60:02d}"
    return f"{sign}{m // 60:02d}:{m % 60:02d}"


def rfc3339(epoch, offset_min, rng=None, fraction=None, sep="T", zstyle="Z"):
    """RFC 3339 with the given offset (minutes east of UTC)."""
    local = dt.datetime.fromtimestamp(epoch, dt.timezone.utc) + dt.timedelta(minutes=offset_min)
    text = local.strftime("%Y-%m-%d") + sep + local.strftime("%H:%M:%S")
    if fraction:
        text += "." + fraction
    if offset_min == 0 and zstyle in ("Z", "z"):
        text += zstyle
    else:
        text += offset_text(offset_min)
    return text


def loose_timestamp(epoch, offset_min, rng):
    """One of the loose forms docs/formats.md "Loose timestamps" accepts, for this instant."""
    form = rng.random()
    local = dt.datetime.fromtimestamp(epoch, dt.timezone.utc) + dt.timedelta(minutes=offset_min)
    if form < 0.45:
        return rfc3339(epoch, offset_min)
    if form < 0.60:  # space and ±HHMM (Shopify)
        return local.strftime("%Y-%m-%d %H:%M:%S ") + offset_text(offset_min, "nocolon")
    if form < 0.68:  # Meta's +0000 after a T
        utc = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
        return utc.strftime("%Y-%m-%dT%H:%M:%S") + "+0000"
    if form < 0.76:  # space, UTC or GMT
        utc = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
        return utc.strftime("%Y-%m-%d %H:%M:%S ") + rng.choice(["UTC", "GMT"])
    if form < 0.82:  # space and nothing: UTC
        utc = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
        return utc.strftime("%Y-%m-%d %H:%M:%S")
    if form < 0.88:  # space and ±HH:MM
        return local.strftime("%Y-%m-%d %H:%M:%S ") + offset_text(offset_min)
    return str(epoch)  # Unix seconds


def count_text(value, rng):
    """A count as an export may write it: plain, grouped (then quoted), leading zeros, spaces."""
    r = rng.random()
    if value >= 1000 and r < 0.25:
        return f"{value:,}"
    if r < 0.27:
        return "00" + str(value)
    if r < 0.30:
        return f" {value} "
    return str(value)


def lognormal_int(rng, median, sigma):
    return max(0, int(round(median * math.exp(rng.gauss(0, sigma)))))


# ---------------------------------------------------------------- posts

MEDIA_WRITTEN = {
    "text": ["text", "status", "Status", "TEXT"],
    "image": ["image", "photo", "Picture", "IMAGE"],
    "video": ["video", "reel", "REELS", "Shorts", "short", "VIDEO"],
    "carousel": ["carousel", "CAROUSEL_ALBUM", "album"],
    "link": ["link", "article"],
    "other": ["other", "", "live", "document", " idea "],
}
MEDIA_WEIGHTS = [("text", 14), ("image", 30), ("video", 30), ("carousel", 12), ("link", 8), ("other", 6)]

CAPTIONS = [
    "নতুন কালেকশন এসেছে, ৳1,250 🇧🇩",
    "Biryani Sunday!\nOrder before 2pm 🍛",
    "Eid sale: \"flat 20%\" off",
    "سردیوں کی نئی کلیکشن",
    "Weekend brunch\r\nopen 9–3",
    "Just a plain caption",
    "",
    "emoji 🎉🎉, commas, and \"quotes\"",
]


def pick_media(rng):
    total = sum(w for _, w in MEDIA_WEIGHTS)
    x = rng.uniform(0, total)
    for kind, w in MEDIA_WEIGHTS:
        x -= w
        if x <= 0:
            return kind
    return "other"


def post_counts(rng, platform, media, has_reach=True, lift=1.0):
    """A post's counts as a dict of ints or None (unknown); `lift` multiplies the likes."""
    followers = lognormal_int(rng, 20000, 1.0) + 10
    reach = lognormal_int(rng, followers * 0.3, 0.9)
    impressions = reach + lognormal_int(rng, reach * 0.4 + 1, 0.8)
    rate = min(0.5, math.exp(rng.gauss(math.log(0.05), 0.7)))
    likes = int(reach * rate * lift)
    comments = int(likes * rng.uniform(0.01, 0.12))
    shares = int(likes * rng.uniform(0.0, 0.15))
    saves = int(likes * rng.uniform(0.0, 0.2))
    clicks = int(impressions * rng.uniform(0.0, 0.02))
    views = lognormal_int(rng, reach * 1.5, 0.6) if media == "video" else None
    c = {
        "likes": likes, "comments": comments, "shares": shares, "saves": saves,
        "reach": reach if has_reach else None, "impressions": impressions, "video_views": views,
        "clicks": clicks, "followers_at_post": followers,
    }
    # Missing counts (unknown), zero reach, zero engagement.
    for key in ("likes", "comments", "shares", "saves", "reach", "impressions", "clicks", "video_views"):
        if c[key] is not None and rng.random() < 0.06:
            c[key] = None
    r = rng.random()
    if r < 0.01 and c["reach"] is not None:
        c["reach"] = 0
    elif r < 0.02:
        c["likes"] = c["comments"] = c["shares"] = c["saves"] = 0
    if rng.random() < 0.01 and c["impressions"] is not None:
        c["impressions"] = 0
    return c


def post_time(rng, offset_min):
    epoch = rng.randrange(EPOCH_START, EPOCH_END)
    # Bunch posts into popular local hours so slots have enough posts to recommend.
    local_hour = (epoch // 3600 + offset_min // 60) % 24
    if rng.random() < 0.5:
        epoch += ((rng.choice([9, 12, 13, 18, 20, 21]) - local_hour) % 24) * 3600
    return min(epoch, EPOCH_END)


def fraction(rng):
    r = rng.random()
    if r < 0.85:
        return None
    return "".join(rng.choice("0123456789") for _ in range(rng.choice([1, 3, 6, 9])))


POST_COLUMNS = ["platform", "account", "id", "created_at", "media_type", "likes", "comments", "shares",
                "saves", "reach", "impressions", "video_views", "clicks", "followers_at_post", "caption"]


class PostsWriter:
    """Writes one posts file; deliberately bad rows are mixed in at a fixed rate."""

    def __init__(self, rng, ids):
        self.rng = rng
        self.ids = ids

    def next_id(self):
        self.ids[0] += 1
        return str(10_000_000 + self.ids[0])


BAD_POST_CSV = [
    ("likes", "-5"), ("likes", "1.5"), ("comments", "lots"), ("shares", "12,34"), ("saves", "1,2345"),
    ("reach", "99999999999999999999"), ("impressions", "-1,000"), ("clicks", "+5"), ("likes", "1e3"),
    ("video_views", ",123"), ("likes", "১২"), ("created_at", "2026-02-30T10:00:00+06:00"),
    ("created_at", "2026-03-01T18:30:00"), ("created_at", "2026-03-01 18:30:00+06:00"),
    ("created_at", "yesterday"), ("created_at", "2026-03-01T24:00:00Z"), ("created_at", "2026-03-01T10:00:60Z"),
    ("created_at", "0000-03-01T10:00:00Z"), ("created_at", "2026-03-01T10:00:00+24:00"), ("created_at", ""),
    ("id", ""), ("id", "   "), ("id", "10\x0799"), ("id", "10\n98"), ("account", "bad\x7facct"),
    ("followers_at_post", "12k"), ("fieldcount", None),
]


def write_posts_csv(path, rng, n, ids, platform_choices, account_choices, offsets, columns,
                    bom=False, eol="\n", platform_default_blank=0.0, account_default_blank=0.0,
                    no_reach=False, header_names=None, extra_cols=None, trailing_blank_lines=0,
                    long_record=False, unterminated_last=False, no_text=False):
    """`columns`: canonical field names in file order (a subset of POST_COLUMNS);
    `header_names`: how the header writes them; `extra_cols`: unknown columns appended."""
    header_names = header_names or columns
    extra_cols = extra_cols or []
    bad_every = max(50, n // 40) if n >= 200 else 0
    bad_index = 0
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        if bom:
            f.write("\ufeff")
        f.write(",".join(list(header_names) + extra_cols) + eol)
        for i in range(n):
            platform = rng.choice(platform_choices)
            account = rng.choice(account_choices)
            if rng.random() < platform_default_blank:
                platform = ""
            if rng.random() < account_default_blank:
                account = ""
            offset = rng.choice(offsets)
            media = pick_media(rng)
            if no_text and media == "text":
                media = "video"
            counts = post_counts(rng, platform, media, has_reach=not no_reach,
                                 lift=LIKE_LIFT.get(account, {}).get(media, 1.0))
            ids[0] += 1
            record = {
                "platform": platform, "account": account, "id": str(10_000_000 + ids[0]),
                "created_at": rfc3339(post_time(rng, offset), offset, fraction=fraction(rng),
                                      sep="t" if rng.random() < 0.02 else "T",
                                      zstyle="z" if rng.random() < 0.2 else "Z"),
                "media_type": rng.choice(MEDIA_WRITTEN[media]),
                "caption": rng.choice(CAPTIONS),
            }
            for key, value in counts.items():
                record[key] = "" if value is None else count_text(value, rng)
            if rng.random() < 0.02:
                record["platform"] = f" {platform} " if platform else platform
            fieldcount_bad = False
            if bad_every and i % bad_every == bad_every // 2:
                column, value = BAD_POST_CSV[bad_index % len(BAD_POST_CSV)]
                bad_index += 1
                if column == "fieldcount":
                    fieldcount_bad = True
                elif column in columns:
                    record[column] = value
                else:
                    record["likes"] = "-7"
            if long_record and i == n // 2:
                record["caption"] = "long caption " * 90000  # 1.1 MiB: record too long
            fields = [record.get(c, "") for c in columns] + [rng.choice(["x", "lots", "-1", ""]) for _ in extra_cols]
            if fieldcount_bad:
                fields = fields[:-1]
            f.write(csv_line(fields, rng, eol=eol))
            rows += 1
        if unterminated_last:
            ids[0] += 1
            f.write(f"facebook,dhaka_threads,{10_000_000 + ids[0]},2026-03-01T18:30:00+06:00,photo,1,2,3,4,5,6,,7,8,\"unterminated caption{eol}and the rest of the file")
        f.write(eol * trailing_blank_lines)
    return rows


BAD_POST_NDJSON = [
    '{"id": "x1", "created_at": ',
    "not json at all",
    "[1, 2, 3]",
    '"just a string"',
    '{"id": 12345, "created_at": "2026-03-01T18:30:00+05:00"}',
    '{"id": "n1", "created_at": "2026-03-01T18:30:00+05:00", "likes": 1.5}',
    '{"id": "n2", "created_at": "2026-03-01T18:30:00+05:00", "likes": 12.0}',
    '{"id": "n3", "created_at": "2026-03-01T18:30:00+05:00", "comments": 1e3}',
    '{"id": "n4", "created_at": "2026-03-01T18:30:00+05:00", "shares": true}',
    '{"id": "n5", "created_at": "2026-03-01T18:30:00+05:00", "saves": -3}',
    '{"id": "n6", "created_at": "2026-03-01T18:30:00+05:00", "reach": "-0"}',
    '{"id": "n7", "created_at": "2026-03-01T18:30:00"}',
    '{"id": "n8", "created_at": 1772371800}',
    '{"id": "n9", "created_at": "2026-03-01T18:30:00+05:00", "media_type": 3}',
    '{"created_at": "2026-03-01T18:30:00+05:00", "likes": 3}',
    '{"id": "n10", "created_at": "2026-03-01T18:30:00+05:00", "impressions": [1]}',
    '{"id": "n11", "created_at": "2026-03-01T18:30:00+05:00", "clicks": "12,34"}',
    '{"id": "n12", "platform": "instagram\\u0001", "created_at": "2026-03-01T18:30:00+05:00"}',
]


def write_posts_ndjson(path, rng, n, ids, platform, accounts, offsets):
    bad_every = max(50, n // 40) if n >= 200 else 0
    bad_index = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\ufeff")
        for i in range(n):
            media = pick_media(rng)
            account = rng.choice(accounts) if rng.random() < 0.8 else None
            counts = post_counts(rng, platform, media, lift=LIKE_LIFT.get(account, {}).get(media, 1.0))
            offset = rng.choice(offsets)
            ids[0] += 1
            obj = {}
            camel = rng.random() < 0.2
            if rng.random() < 0.7:
                obj["platform"] = platform
            if account is not None:
                obj["account"] = account
            obj["id"] = str(20_000_000 + ids[0])
            obj["createdAt" if camel else "created_at"] = rfc3339(post_time(rng, offset), offset, fraction=fraction(rng))
            obj["mediaType" if camel else "media_type"] = rng.choice(MEDIA_WRITTEN[media])
            for key, value in counts.items():
                name = key
                if camel and key == "video_views":
                    name = "videoViews"
                if camel and key == "followers_at_post":
                    name = "followersAtPost"
                if value is None:
                    r = rng.random()
                    if r < 0.4:
                        obj[name] = None
                    elif r < 0.6:
                        obj[name] = ""
                    continue
                r = rng.random()
                if r < 0.7:
                    obj[name] = value
                elif r < 0.85:
                    obj[name] = str(value)
                else:
                    obj[name] = f"{value:,}"
            if rng.random() < 0.3:
                obj["caption"] = rng.choice(CAPTIONS) if rng.random() < 0.9 else 42
            if not camel and rng.random() < 0.03:
                # Both spellings: the snake_case one wins, so these camelCase values are never read.
                obj["createdAt"] = rng.choice(["garbage", "2026-03-01T00:00:00Z"])
                obj["videoViews"] = "lots"
                obj["mediaType"] = "video"
            if i == n // 2 and n >= 1000:
                obj["caption"] = "long caption " * 90000  # a line over 1 MiB: record too long
            items = list(obj.items())
            rng.shuffle(items)
            line = json.dumps(dict(items), ensure_ascii=rng.random() < 0.5)
            if bad_every and i % bad_every == bad_every // 3:
                line = BAD_POST_NDJSON[bad_index % len(BAD_POST_NDJSON)]
                bad_index += 1
            f.write(line + ("\r\n" if rng.random() < 0.1 else "\n"))
            if rng.random() < 0.005:
                f.write(rng.choice(["\n", "   \n", "\t\n"]))


# ---------------------------------------------------------------- orders

UTM_LANDINGS = [
    "/products/tee?utm_source=Facebook&utm_medium=paid_social&utm_campaign=eid%20sale",
    "/?UTM_SOURCE=ig&Utm_Medium=social",
    "/collections/all?utm_source=google&utm_medium=cpc",
    "/collections/all?utm_source=Google&utm_medium=organic",
    "/?utm_source=newsletter&utm_medium=email",
    "/?utm_source=spring+sale&utm_medium=banner",
    "/?utm_source=partner&utm_medium=Social",
    "/?utm_source=%20TikTok%20&utm_medium=paid",
    "/?utm_source=face%62ook",
    "/?utm_medium=email",
    "/?utm_medium=SMS",
    "/?utm_medium=cpc",
    "/?utm_source=ig&utm_source=facebook",
    "/?utm_source=bing&utm_medium=ppc",
    "/?utm_source=bing",
    "/?utm_source=facebook&utm_medium=email",
    "/?utm_source=whatsapp",
    "/?utm_source=klaviyo&utm_medium=flow",
    "/?utm_source=Pinterest&utm_medium=paid-social",
    "/?utm_source=yt",
    "/?utm_source=lnkd.in",
    "/?utm_source=t.co",
    "/?utm_source=duckduckgo",
    "/?utm_source=google&utm_medium=paid%5Fsearch",
    "/?utm_source=Google%2Ecom&utm_medium=SEM",
    "https://shop.example.com/products/x?ref=home&utm_source=instagram.com&utm_medium=social",
    "/?utm_source=+&utm_medium=%20",
    "/?utm_source=&utm_medium=&fbclid=IwAR0abc",
    "/?utm_campaign=summer&gclid=Cj0K",
    "/?utm_source=sms",
    "/?utm_source=Mailchimp",
    "/?utm_source=news&utm_medium=social-media",
    "/?utm_source=unknown%2Bthing&utm_medium=referral",
]
CLICK_LANDINGS = [
    "/products/tee?fbclid=IwAR0",
    "https://shop.example.com/?gclid=Cj0KCQ",
    "/?GCLID=abc",
    "/?msclkid=123",
    "/?ttclid=E.C.P.abc",
    "/?epik=dj0y",
    "/?li_fat_id=xyz",
    "/?twclid=2-abc",
    "/?gbraid=0AAAA",
    "/?wbraid=CjkK",
    "/?dclid=CLz",
    "/?ref=abc&FbClId=x&gclid=y",
    "/products/y?variant=1&ttclid=z",
    "/?fbclid=",
]
PLAIN_LANDINGS = ["/", "/products/tee", "/collections/eid?page=2", "", "/?ref=home&variant=3"]
REFERRERS = [
    "https://www.google.com/", "https://l.facebook.com/", "https://lm.facebook.com/l.php?u=x",
    "http://m.facebook.com", "android-app://com.google.android.gm/", "https://mail.google.com/mail/u/0/",
    "https://www.bing.com/search?q=tee", "duckduckgo.com/", "https://search.yahoo.com/search?p=x",
    "https://mail.yahoo.com/", "https://www.google.co.uk/", "https://pinterest.co.uk/pin/1",
    "https://pin.it/abc", "https://t.co/xyz", "https://out.reddit.com/r/x", "https://www.instagram.com/",
    "https://youtu.be/abc", "https://business.facebook.com/", "https://lnkd.in/abc", "https://yandex.ru/",
    "https://www.ecosia.org/", "https://outlook.live.com/", "  https://www.tiktok.com/  ",
    "HTTPS://WWW.GOOGLE.COM/", "https://mobile.twitter.com/", "https://news.google.com/",
    "https://www.m.facebook.com/", "https://x.com/home", "https://www.messenger.com/", "https://fb.me/x",
    "google.com/search", "https://www.youtube.com/watch?v=1", "https://blog.example.org/post",
    "https://www.pinterest.com/", "https://www.linkedin.com/feed", "https://baidu.com/s?wd=x",
    "", "   ",
]


BAD_ORDER = [("total", "12,50"), ("total", "1e3"), ("total", "abc"), ("total", ""), ("id", ""),
             ("created_at", "yesterday"), ("created_at", "2026-02-30 10:00:00 +0600"), ("created_at", ""),
             ("total", "1.2.3"), ("fieldcount", None)]


def order_visit(rng):
    r = rng.random()
    if r < 0.45:
        landing = rng.choice(UTM_LANDINGS)
    elif r < 0.65:
        landing = rng.choice(CLICK_LANDINGS)
    else:
        landing = rng.choice(PLAIN_LANDINGS)
    referrer = rng.choice(REFERRERS) if rng.random() < 0.7 else ""
    return landing, referrer


# The customers buy as BG/NBD says (Fader, Hardie & Lee 2005; rates per week) and spend as
# Gamma-Gamma says (Fader, Hardie & Lee 2005b), so the clv report's fits are well defined:
# each customer arrives at a uniform time between ORDER_START and EPOCH_END, buys at a
# Poisson rate lambda ~ Gamma(r, alpha), and after each repeat purchase leaves for good with
# probability p ~ Beta(a, b); each order spends z ~ Gamma(p_gg, nu), nu ~ Gamma(q_gg, gamma)
# with gamma set so the mean spend is the currency's scale.
BGNBD = {"r": 0.6, "alpha": 6.0, "a": 0.9, "b": 2.8}
GAMMA_GAMMA = {"p": 5.0, "q": 4.0}
MONEY_SCALE = {"BDT": 2500, "PKR": 6000, "INR": 1800, "USD": 45, "": 40}


def money_text(rng, value):
    """An order total as exports write it; a few are refunds written as orders, or 0.10."""
    r = rng.random()
    if r < 0.01:
        return "-" + f"{value / 5:.2f}"
    if r < 0.24:
        return str(int(value))
    if r < 0.29:
        return f"{value:.1f}"
    if r < 0.30:
        return "0.10"
    return f"{value:.2f}"


def weighted(rng, items):
    total = sum(w for w, _ in items)
    x = rng.uniform(0, total)
    for w, item in items:
        x -= w
        if x <= 0:
            return item
    return items[-1][1]


def new_customer_id(rng, email_share):
    if rng.random() < email_share:
        return "email:" + "".join(rng.choice("0123456789abcdef") for _ in range(16))
    return f"c{rng.randrange(10**9)}"


def order_events(rng, n, homes, deviate_currencies, shared, email_share=0.7, guest_share=0.1):
    """n orders of simulated customers (and guests), by time: dicts with customer, epoch,
    amount, and the written platform, account and currency. `homes`: [(weight, {"platform":
    [written forms], "account": [...], "currency": [...]})]; a customer keeps one home (the
    written forms vary per order); 3 % of orders are in another currency (another cell).
    A few customers order twice within hours (often one purchase day, or one on each side
    of midnight) or twice at the same second (the first order's channel is then the one
    first in UTF-8 order)."""
    events = []

    def add(customer, epoch, home, amount):
        currency = rng.choice(home["currency"])
        if customer and rng.random() < 0.03:
            currency = rng.choice(deviate_currencies)
        events.append({"customer": customer, "epoch": int(epoch), "amount": amount,
                       "platform": rng.choice(home["platform"]), "account": rng.choice(home["account"]),
                       "currency": currency})

    while len(events) < n:
        home = weighted(rng, homes)
        scale = MONEY_SCALE.get(home["currency"][0].upper(), 50)
        if rng.random() < guest_share:
            add("", rng.randrange(ORDER_START, EPOCH_END), home, rng.lognormvariate(math.log(scale), 0.7))
            continue
        customer = rng.choice(shared) if shared and rng.random() < 0.02 else new_customer_id(rng, email_share)
        lam = max(1e-9, rng.gammavariate(BGNBD["r"], 1 / BGNBD["alpha"]))
        drop = rng.betavariate(BGNBD["a"], BGNBD["b"])
        gg_rate = scale * (GAMMA_GAMMA["q"] - 1) / GAMMA_GAMMA["p"]
        nu = rng.gammavariate(GAMMA_GAMMA["q"], 1 / gg_rate)
        t = rng.uniform(ORDER_START, EPOCH_END)
        first = True
        while len(events) < n:
            add(customer, t, home, rng.gammavariate(GAMMA_GAMMA["p"], 1 / nu))
            r = rng.random()
            if r < 0.04 and t + 3 * 3600 < EPOCH_END:
                add(customer, t + rng.randrange(60, 3 * 3600), home, rng.gammavariate(GAMMA_GAMMA["p"], 1 / nu))
            elif r < 0.045:
                add(customer, t, home, rng.gammavariate(GAMMA_GAMMA["p"], 1 / nu))
            if not first and rng.random() < drop:
                break
            first = False
            t += rng.expovariate(lam) * WEEK
            if t >= EPOCH_END:
                break
    events = events[:n]
    events.sort(key=lambda e: e["epoch"])
    return events


def write_orders_csv(path, rng, events, ids, offsets, with_platform):
    """Newest first, as Shopify exports."""
    columns = (["platform", "account"] if with_platform else []) + [
        "id", "created_at", "customer", "total", "currency", "landing_site", "referring_site"]
    header = [c.upper() if rng.random() < 0.2 else c for c in columns]
    n = len(events)
    bad_every = max(40, n // 30) if n >= 100 else 0
    bad_index = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        for i, event in enumerate(reversed(events)):
            ids[0] += 1
            offset = rng.choice(offsets)
            landing, referrer = order_visit(rng)
            record = {
                "platform": event["platform"], "account": event["account"],
                "id": str(5000 + ids[0]),
                "created_at": loose_timestamp(event["epoch"], offset, rng),
                "customer": event["customer"],
                "total": money_text(rng, event["amount"]),
                "currency": event["currency"],
                "landing_site": landing,
                "referring_site": referrer,
            }
            bad = False
            if bad_every and i % bad_every == bad_every // 2:
                column, value = BAD_ORDER[bad_index % len(BAD_ORDER)]
                bad_index += 1
                if column == "fieldcount":
                    bad = True
                else:
                    record[column] = value
            fields = [record[c] for c in columns]
            if bad:
                fields.append("extra")
            f.write(csv_line(fields, rng))


def write_orders_ndjson(path, rng, events, ids, offsets):
    n = len(events)
    bad_every = max(40, n // 30) if n >= 100 else 0
    bad_index = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        for i, event in enumerate(events):
            ids[0] += 1
            currency = event["currency"]
            landing, referrer = order_visit(rng)
            obj = {"id": str(900000 + ids[0]),
                   "created_at": loose_timestamp(event["epoch"], rng.choice(offsets), rng),
                   "total": money_text(rng, event["amount"])}
            customer = event["customer"]
            if customer or rng.random() < 0.5:
                obj["customer"] = customer
            if currency or rng.random() < 0.5:
                obj["currency"] = currency
            if landing:
                obj["landing_site"] = landing
            if referrer:
                obj["referring_site"] = referrer
            line = json.dumps(obj)
            if bad_every and i % bad_every == bad_every // 2:
                column, value = BAD_ORDER[bad_index % len(BAD_ORDER)]
                bad_index += 1
                if column == "fieldcount":
                    line = "[\"not an object\"]"
                else:
                    obj[column] = value
                    line = json.dumps(obj)
            f.write(line + "\n")


# ---------------------------------------------------------------- messages


def tz_offset_minutes(zone_offsets, epoch):
    return zone_offsets(epoch) if callable(zone_offsets) else zone_offsets


def new_york_offset(epoch):
    # 2026: EDT from 2026-03-08 07:00 UTC to 2026-11-01 06:00 UTC.
    if 1772953200 <= epoch < 1793512800:
        return -240
    return -300


def conversation_messages(rng, start, business_offset, customer_offsets):
    """One conversation: list of (epoch, direction, offset)."""
    msgs = []
    t = start
    if rng.random() < 0.1:  # the business wrote first (a broadcast)
        msgs.append((t - rng.randrange(60, 86400), "outbound", business_offset))
    if rng.random() < 0.03:  # only the business writes
        msgs.append((t, "outbound", business_offset))
        return msgs
    cust_off = rng.choice(customer_offsets)
    msgs.append((t, "inbound", cust_off))
    r = rng.random()
    if r < 0.15:  # unanswered, maybe a second inbound
        if rng.random() < 0.5:
            msgs.append((t + rng.randrange(30, 7200), "inbound", cust_off))
        return msgs
    if r < 0.18:
        delay = 0  # answered at the same second
    elif r < 0.45:
        delay = rng.randrange(5, 900)
    elif r < 0.70:
        delay = rng.randrange(900, 3600)
    elif r < 0.92:
        delay = rng.randrange(3600, 86400)
    else:
        delay = rng.randrange(86400, 86400 * 4)
    if rng.random() < 0.05:
        msgs.append((t + rng.randrange(0, 120), "inbound", cust_off))
    t += delay
    msgs.append((t, "outbound", business_offset))
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        t += rng.randrange(10, 20000)
        msgs.append((t, "inbound", cust_off))
        if rng.random() < 0.7:
            t += rng.randrange(0, 20000)
            msgs.append((t, "outbound", business_offset))
    if rng.random() < 0.03:  # the customer writes again at the same second as the last reply
        msgs.append((t, "inbound", cust_off))
    return msgs


DIRECTIONS = {"inbound": ["inbound", "inbound", "in", "received"], "outbound": ["outbound", "outbound", "out", "sent"]}


def write_messages_ndjson(path, rng, n, conv_prefix, platform, business_offset, customer_offsets,
                          with_platform_key, shared_ids):
    bad = ['{"conversation": "t_bad1", "direction": "maybe", "at": "2026-03-01T10:00:00Z"}',
           '{"conversation": "t_bad2", "direction": "inbound", "at": "yesterday"}',
           '{"direction": "inbound", "at": "2026-03-01T10:00:00Z"}',
           '{"conversation": "t_bad3", "at": "2026-03-01T10:00:00Z"}',
           '{"conversation": "t_bad4", "direction": "inbound", "at": "2026-02-30T10:00:00Z"}',
           '{"conversation": "t_bad5", "direction": "inbound", ',
           '[1, 2]']
    written = 0
    k = 0
    lines = []
    while written < n:
        k += 1
        start = rng.randrange(EPOCH_START, EPOCH_END)
        boff = tz_offset_minutes(business_offset, start)
        if shared_ids and rng.random() < 0.05:
            conv = rng.choice(shared_ids)
        else:
            conv = f"{conv_prefix}{k}"
        msgs = conversation_messages(rng, start, boff, customer_offsets)
        for epoch, direction, off in msgs:
            off = tz_offset_minutes(off, epoch)
            obj = {}
            if conv.isdigit() and rng.random() < 0.5:
                obj["conversation"] = int(conv)
            else:
                obj["conversation" if rng.random() < 0.8 else "thread_id"] = conv
            obj["direction"] = rng.choice(DIRECTIONS[direction])
            r = rng.random()
            if r < 0.08:
                obj["at"] = epoch  # a JSON number
            elif r < 0.2:
                obj["timestamp"] = loose_timestamp(epoch, off, rng)
            else:
                obj["at"] = loose_timestamp(epoch, off, rng)
            if with_platform_key and rng.random() < 0.7:
                obj["platform"] = platform
            if rng.random() < 0.5:
                obj["id"] = f"m_{conv}_{written}"
            lines.append(json.dumps(obj))
            written += 1
    # Messages of a conversation need not be adjacent or in order.
    rng.shuffle(lines)
    step = max(60, len(lines) // 20)
    for j, b in enumerate(bad):
        pos = min(len(lines), (j + 1) * step)
        lines.insert(pos, b)
    with open(path, "w", encoding="utf-8", newline="") as f:
        for line in lines:
            f.write(line + "\n")


def write_messages_csv(path, rng, n, conv_prefix, accounts, business_offset, customer_offsets):
    header = ["thread_id", "Direction", "created_time", "page", "message_id", "text"]
    rows = []
    written = 0
    k = 0
    while written < n:
        k += 1
        start = rng.randrange(EPOCH_START, EPOCH_END)
        account = rng.choice(accounts)
        conv = f"{conv_prefix}{k}"
        boff = tz_offset_minutes(business_offset, start)
        for epoch, direction, off in conversation_messages(rng, start, boff, customer_offsets):
            rows.append([conv, rng.choice(DIRECTIONS[direction]), loose_timestamp(epoch, off, rng), account,
                         f"mid.{written}", rng.choice(["hi, is this in stock?", "yes, size M", "thanks!\nbye", ""])])
            written += 1
    rng.shuffle(rows)
    bad_rows = [["t_x1", "sideways", "2026-03-01 10:00:00", accounts[0], "b1", ""],
                ["t_x2", "in", "not a time", accounts[0], "b2", ""],
                ["", "in", "2026-03-01 10:00:00", accounts[0], "b3", ""],
                ["t_x3", "out", "2026-03-01 10:00:00", accounts[0], "b4"]]
    step = max(40, len(rows) // 10)
    for j, b in enumerate(bad_rows):
        rows.insert(min(len(rows), (j + 1) * step), b)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\r\n")
        for row in rows:
            f.write(csv_line(row, rng, eol="\r\n"))


# ---------------------------------------------------------------- reviews


def review_fields(rng):
    stars = rng.choices([1, 2, 3, 4, 5], weights=[6, 4, 8, 22, 60])[0]
    epoch = rng.randrange(EPOCH_START, EPOCH_END)
    return stars, epoch


BAD_RATINGS = ["0", "6", "4.5", "", "five", "-1"]


def write_reviews_judgeme(path, rng, n):
    header = "title,body,rating,review_date,source,curated,reviewer_name,reviewer_email,product_id,product_handle,reply,reply_date,picture_urls,ip_address,location"
    bad_every = max(30, n // 20) if n >= 60 else 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(header + "\n")
        for i in range(n):
            stars, epoch = review_fields(rng)
            rating = rng.choice([str(stars), f"{stars}.0"])
            date = rng.choice([
                dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
                rfc3339(epoch, 360),
                dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%d"),
            ])
            curated = rng.choices(["ok", "spam", "not-yet", "OK"], weights=[85, 5, 8, 2])[0]
            reply = rng.choice(["", "", "", "Thank you so much!", "Sorry about that, we've sent a replacement, please check"])
            pics = rng.choice(["", "", "", "https://cdn.example.com/a.jpg", "https://cdn.example.com/a.jpg,https://cdn.example.com/b.jpg"])
            if bad_every and i % bad_every == bad_every // 2:
                j = i // bad_every
                if j % 3 == 0:
                    rating = BAD_RATINGS[j % len(BAD_RATINGS)]
                elif j % 3 == 1:
                    date = rng.choice(["soon", "2026-13-01", ""])
                else:
                    rating = BAD_RATINGS[(j + 1) % len(BAD_RATINGS)]
            row = [rng.choice(["Love it", "Meh", "Great, fast delivery"]),
                   rng.choice(["Fits well", "Colour \"faded\" after a wash", "ভালো মানের কাপড়\nআবার কিনব"]),
                   rating, date, rng.choice(["web", "email", "import"]), curated,
                   "A. Reviewer", "a@example.com", str(rng.randrange(1000, 1100)), "tee-" + str(rng.randrange(10)),
                   reply, "", pics, "203.0.113.7", "Dhaka, BD"]
            f.write(csv_line(row, rng))


def write_reviews_yotpo(path, rng, n):
    header = "Review Title,Review Content,Review Score,Date,Product ID,Product Name,Display Name,Email"
    bad_every = max(30, n // 20) if n >= 60 else 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\ufeff" + header + "\r\n")
        for i in range(n):
            stars, epoch = review_fields(rng)
            date = rng.choice([
                dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%d"),
                (dt.datetime.fromtimestamp(epoch, dt.timezone.utc) + dt.timedelta(hours=5)).strftime("%Y-%m-%d %H:%M:%S +0500"),
                str(epoch),
            ])
            rating = str(stars)
            if bad_every and i % bad_every == bad_every // 3:
                rating = BAD_RATINGS[(i // bad_every) % len(BAD_RATINGS)]
            row = ["Nice", "Good biryani masala", rating, date, str(rng.randrange(7000, 7050)),
                   "Masala box", "K. Buyer", "k@example.com"]
            f.write(csv_line(row, rng, eol="\r\n"))


def write_reviews_canonical(path, rng, n, stores):
    header = ["platform", "store", "review_id", "created_at", "stars", "product_handle", "verified_buyer",
              "media_count", "replied", "status"]
    bad_every = max(30, n // 20) if n >= 60 else 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        for i in range(n):
            stars, epoch = review_fields(rng)
            row = [rng.choice(["web", "web", "shopify", ""]), rng.choice(stores), f"r{i}",
                   loose_timestamp(epoch, rng.choice([0, 330, 345]), rng), str(stars),
                   "item-" + str(rng.randrange(20)),
                   rng.choice(["true", "false", "yes", "no", "1", "0", "", "", "maybe"]),
                   rng.choice(["0", "0", "1", "3", "", "https://x.example/a.png"]),
                   rng.choice(["yes", "no", "", "", "Thanks for the feedback"]),
                   rng.choice(["published", "published", "hidden", "pending", "spam", "", "Published"])]
            if bad_every and i % bad_every == bad_every // 4:
                row[4] = BAD_RATINGS[(i // bad_every) % len(BAD_RATINGS)]
            f.write(csv_line(row, rng))


# ---------------------------------------------------------------- ad insights


def write_ads_csv(path, rng, n):
    header = ["platform", "account", "date", "campaign", "ad", "spend", "impressions", "clicks", "conversions",
              "claimed_roas"]
    accounts = [("facebook", "1010035716096012"), ("facebook", "2020035716096013"), ("tiktok", "7001234567"),
                ("Facebook", "3030035716096014"), ("snapchat", "snap-1"), ("instagram", "4040035716096015")]
    campaigns = {acc: [f"{acc[1][-4:]}-c{j}" for j in range(rng.randrange(2, 5))] + [""] for acc in accounts}
    day0 = dt.date(2026, 1, 5)
    bad = [("date", "2026-02-30"), ("ad", ""), ("spend", "12,50"), ("spend", "1e3"), ("impressions", "-5"),
           ("clicks", "lots"), ("date", "yesterday"), ("conversions", "1.5"), ("claimed_roas", "abc")]
    bad_every = max(40, n // 20) if n >= 80 else 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        for i in range(n):
            platform, account = rng.choice(accounts)
            day = day0 + dt.timedelta(days=rng.randrange(0, 170))
            spend = rng.lognormvariate(math.log(40), 1.0)
            impressions = lognormal_int(rng, spend * 300, 0.5)
            clicks = lognormal_int(rng, impressions * 0.012, 0.5)
            conversions = lognormal_int(rng, clicks * 0.04, 0.8)
            record = {
                "platform": platform, "account": account, "date": day.isoformat(),
                "campaign": rng.choice(campaigns[(platform, account)]), "ad": f"ad{rng.randrange(1, 40)}",
                "spend": rng.choice([f"{spend:.2f}", f"{spend:.2f}", f"{spend:.1f}", str(int(spend))]),
                "impressions": count_text(impressions, rng), "clicks": str(clicks),
                "conversions": str(conversions), "claimed_roas": rng.choice(["2.5", "3.1415", "0", "1.75", "4"]),
            }
            r = rng.random()
            if r < 0.03:
                record["spend"] = ""
            elif r < 0.05:
                record["spend"] = "0"
            if rng.random() < 0.04:
                record["impressions"] = ""
            if rng.random() < 0.03:
                record["clicks"] = ""
            if rng.random() < 0.15 or platform == "snapchat":
                record["conversions"] = ""
            if rng.random() < 0.2 or platform == "snapchat":
                record["claimed_roas"] = ""
            if bad_every and i % bad_every == bad_every // 2:
                column, value = bad[(i // bad_every) % len(bad)]
                record[column] = value
            f.write(csv_line([record[c] for c in header], rng))


# ---------------------------------------------------------------- main


def split(total, weights):
    s = sum(weights)
    parts = [total * w // s for w in weights]
    parts[0] += total - sum(parts)
    return parts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--posts", type=int, default=20000)
    ap.add_argument("--orders", type=int, default=5000)
    ap.add_argument("--messages", type=int, default=8000)
    ap.add_argument("--reviews", type=int, default=3000)
    ap.add_argument("--ads", type=int, default=2000)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    manifest = []

    def add(file, kind, fmt, platform=None, account=None, timezone=None, business_hours=None, name=None):
        entry = {"file": file, "kind": kind, "format": fmt}
        if platform:
            entry["platform"] = platform
        if account:
            entry["account"] = account
        if timezone:
            entry["timezone"] = timezone
        if business_hours:
            entry["business_hours"] = business_hours
        entry["name"] = name or file.rsplit(".", 1)[0]
        manifest.append(entry)

    # Posts: four files.
    p1, p2, p3, p4 = split(args.posts, [30, 25, 20, 25])
    ids = [0]
    write_posts_csv(os.path.join(args.out, "posts-facebook-dhaka.csv"), rng, p1, ids,
                    ["facebook", "facebook", "Facebook"], ["dhaka_threads", "dhaka_threads", "chittagong_tea"],
                    [360, 360, 360, 0], POST_COLUMNS, platform_default_blank=0.05,
                    account_default_blank=0.05, extra_cols=["permalink"], long_record=p1 >= 1000,
                    unterminated_last=True)
    add("posts-facebook-dhaka.csv", "posts", "csv", "facebook", "dhaka_threads", timezone="Asia/Dhaka")

    write_posts_ndjson(os.path.join(args.out, "posts-instagram-karachi.ndjson"), rng, p2, ids, "instagram",
                       ["karachi_kitchen", "karachi_kitchen", "lahore_looms"], [300, 300, 0, 330])
    # No account on the source: the lines without one are account "" (docs/formats.md "Source defaults").
    add("posts-instagram-karachi.ndjson", "posts", "ndjson", "instagram", None)

    tiktok_cols = ["created_at", "id", "media_type", "likes", "comments", "shares", "saves", "video_views",
                   "impressions", "clicks", "caption"]
    tiktok_header = ["Created_At", " ID ", "Media_Type", "LIKES", "Comments", "Shares", "Saves", "Video_Views",
                     "Impressions", "CLICKS", "Caption"]
    write_posts_csv(os.path.join(args.out, "posts-tiktok.csv"), rng, p3, ids, ["tiktok"], ["dhaka_threads"],
                    [360, 360, 330, 0], tiktok_cols, bom=True, eol="\r\n", no_reach=True,
                    header_names=tiktok_header, extra_cols=["board"], trailing_blank_lines=2, no_text=True)
    add("posts-tiktok.csv", "posts", "csv", "tiktok", "dhaka_threads")

    multi_cols = ["id", "platform", "account", "created_at", "media_type", "likes", "comments", "shares", "saves",
                  "reach", "impressions", "clicks", "video_views", "caption"]
    write_posts_csv(os.path.join(args.out, "posts-multi.csv"), rng, p4, ids,
                    ["x", "linkedin", "youtube", "pinterest", "threads", "x"],
                    ["nyc_bagels", "mumbai_masala", "kathmandu_knits", "ঢাকা_থ্রেডস", "\u200fکراچی"],
                    [-300, -240, 330, 345], multi_cols, platform_default_blank=0.05, account_default_blank=0.05,
                    header_names=[c.capitalize() if c == "likes" else c for c in multi_cols], extra_cols=[" LIKES "])
    add("posts-multi.csv", "posts", "csv", "x", "nyc_bagels", timezone="America/New_York")
    open(os.path.join(args.out, "posts-empty.csv"), "w").close()  # an empty file has no rows
    add("posts-empty.csv", "posts", "csv", "youtube", "kathmandu_knits")

    # Orders: two CSV files and one NDJSON file, of customers who come back (order_events).
    o1, o2, o3 = split(args.orders, [40, 35, 25])
    oids = [0]
    shared = [new_customer_id(rng, 0.7) for _ in range(20)]
    dhaka_homes = [(80, {"platform": [None], "account": [None], "currency": ["BDT", "BDT", "BDT", "bdt"]}),
                   (14, {"platform": [None], "account": [None], "currency": ["USD"]}),
                   (6, {"platform": [None], "account": [None], "currency": [""]})]
    write_orders_csv(os.path.join(args.out, "orders-web-dhaka.csv"), rng,
                     order_events(rng, o1, dhaka_homes, ["BDT", "USD", ""], shared), oids, [360, 360, 0],
                     with_platform=False)
    add("orders-web-dhaka.csv", "orders", "csv", "web", "dhaka_threads")
    shop_homes = [
        (35, {"platform": ["shopify"], "account": ["karachi_kitchen", "karachi_kitchen", ""], "currency": ["PKR"]}),
        (25, {"platform": ["web", ""], "account": ["karachi_kitchen", ""], "currency": ["PKR"]}),
        (20, {"platform": ["shopify"], "account": ["mumbai_masala"], "currency": ["INR"]}),
        (10, {"platform": ["web", "web", ""], "account": ["mumbai_masala"], "currency": ["INR"]}),
        (6, {"platform": ["shopify"], "account": ["karachi_kitchen"], "currency": ["USD", "usd"]}),
        (4, {"platform": ["web"], "account": ["mumbai_masala"], "currency": ["USD"]}),
    ]
    # The store's zone: its days are Asia/Karachi days whatever offset an order was written with.
    write_orders_csv(os.path.join(args.out, "orders-shops.csv"), rng,
                     order_events(rng, o2, shop_homes, ["PKR", "INR", "USD", "usd"], shared, email_share=0.0),
                     oids, [300, 330, 0], with_platform=True)
    add("orders-shops.csv", "orders", "csv", "web", "karachi_kitchen", timezone="Asia/Karachi")
    nyc_homes = [(95, {"platform": [None], "account": [None], "currency": ["USD"]}),
                 (5, {"platform": [None], "account": [None], "currency": [""]})]
    write_orders_ndjson(os.path.join(args.out, "orders-nyc.ndjson"), rng,
                        order_events(rng, o3, nyc_homes, ["USD", ""], shared), oids, [-300, -240])
    add("orders-nyc.ndjson", "orders", "ndjson", "web", "nyc_bagels")

    # Messages.
    m1, m2, m3 = split(args.messages, [45, 35, 20])
    shared_conv = [f"88017110{j:05d}" for j in range(40)]
    write_messages_ndjson(os.path.join(args.out, "messages-whatsapp-dhaka.ndjson"), rng, m1, "88017", "whatsapp",
                          360, [360, 360, 0, -300], True, shared_conv)
    add("messages-whatsapp-dhaka.ndjson", "messages", "ndjson", "whatsapp", "dhaka_threads",
        timezone="Asia/Dhaka", business_hours="Sat-Thu 10:00-20:00")
    write_messages_ndjson(os.path.join(args.out, "messages-messenger-karachi.ndjson"), rng, m2, "t_", "messenger",
                          300, [300, 0, 330, 60], False, shared_conv)
    add("messages-messenger-karachi.ndjson", "messages", "ndjson", "messenger", "karachi_kitchen",
        business_hours="Mon-Fri 09:00-17:30; Sat 10:00-14:00")
    write_messages_csv(os.path.join(args.out, "messages-instagram.csv"), rng, m3, "ig_",
                       ["mumbai_masala", "nyc_bagels"], new_york_offset, [330, -300, -240, 0])
    add("messages-instagram.csv", "messages", "csv", "instagram", "mumbai_masala", timezone="America/New_York",
        business_hours="Mon-Mon 08:00-12:00, Tue-Sun 13:00-24:00")

    # Reviews.
    r1, r2, r3 = split(args.reviews, [40, 30, 30])
    write_reviews_judgeme(os.path.join(args.out, "reviews-judgeme.csv"), rng, r1)
    add("reviews-judgeme.csv", "reviews", "csv", "web", "dhaka_threads")
    write_reviews_yotpo(os.path.join(args.out, "reviews-yotpo.csv"), rng, r2)
    add("reviews-yotpo.csv", "reviews", "csv", "web", "karachi_kitchen")
    write_reviews_canonical(os.path.join(args.out, "reviews-stores.csv"), rng, r3,
                            ["mumbai_masala", "nyc_bagels", "kathmandu_knits", ""])
    add("reviews-stores.csv", "reviews", "csv", "web", "mumbai_masala")

    # Ad insights.
    write_ads_csv(os.path.join(args.out, "ads.csv"), rng, args.ads)
    add("ads.csv", "ad_insights", "csv", "facebook", "1010035716096012")

    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({"seed": args.seed, "files": manifest}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    spec = {"name": f"analysis cross-check seed {args.seed}", "reports": REPORTS, "max_attempts": 2,
            "sources": []}
    for entry in manifest:
        source = {"name": entry["name"], "kind": entry["kind"], "format": entry["format"],
                  "url": "file://" + os.path.abspath(os.path.join(args.out, entry["file"]))}
        for key in ("platform", "account", "timezone", "business_hours"):
            if key in entry:
                source[key] = entry[key]
        spec["sources"].append(source)
    with open(os.path.join(args.out, "spec.json"), "w") as f:
        json.dump(spec, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
