#!/usr/bin/env python3
"""Writes Haat's bundled demo sample exports into Sources/HaatFixtures/Samples/.

Deterministic: everything comes from one random.Random(SEED); nothing depends on the
clock, the environment or hash randomisation, so running it twice gives identical bytes.

The samples are made-up posts of small brands selling in Bangladesh, Pakistan and India,
spread over several platforms, in the canonical posts CSV and NDJSON formats
(docs/formats.md), with the quirks real exports have:

  facebook-pages.csv            UTF-8 BOM, CRLF line endings, comma-grouped counts ("12,345"),
                                Bengali captions, media_type synonyms (photo, reel, status, album)
  instagram-karachi_kitchen.csv columns in another order and case, an unknown column
                                (Permalink), no clicks column, IMAGE/VIDEO/CAROUSEL_ALBUM/REELS,
                                Urdu captions and emoji
  instagram-dhaka_threads.ndjson  NDJSON, fractional seconds, an unknown field
  tiktok.ndjson                 ASCII-escaped JSON (\\u surrogate pairs for emoji), counts as
                                strings, null and missing counts, blank lines, an unknown field
  youtube-channels.csv          multi-line quoted descriptions, grouped view counts, "live"
                                (an unknown media type, so "other")
  x-posts.ndjson                no reach at all, bookmarks (saves) and link clicks often unknown
  linkedin-companies.csv        every field quoted, "" for unknown reach
  pinterest-lahore_looms.csv    no platform/account columns: the source gives them

Exactly three rows are deliberately bad (likes "lots", created_at "yesterday", a negative
comment count) so that the demo shows bad rows being reported rather than lost.

Also writes manifest.json: each file's format and default platform/account (the job source).
"""

import datetime as dt
import json
import math
import os
import random
import sys

SEED = 20260301
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources", "HaatFixtures", "Samples")

OFFSETS = {"BD": (6, 0), "PK": (5, 0), "IN": (5, 30)}

ACCOUNTS = {
    "dhaka_threads": "BD",   # clothing, Dhaka
    "chittagong_tea": "BD",  # tea estate shop
    "karachi_kitchen": "PK", # home-style food delivery
    "lahore_looms": "PK",    # hand-woven textiles
    "mumbai_masala": "IN",   # spice blends
}

# (platform, account) -> followers at 1 Jan 2026, growth over the year (fraction)
AUDIENCE = {
    ("facebook", "dhaka_threads"): (182_000, 0.22),
    ("facebook", "chittagong_tea"): (61_500, 0.10),
    ("facebook", "mumbai_masala"): (118_000, 0.18),
    ("instagram", "karachi_kitchen"): (151_000, 0.35),
    ("instagram", "dhaka_threads"): (96_400, 0.30),
    ("tiktok", "dhaka_threads"): (243_000, 0.55),
    ("tiktok", "karachi_kitchen"): (312_000, 0.40),
    ("youtube", "chittagong_tea"): (35_200, 0.12),
    ("youtube", "karachi_kitchen"): (88_700, 0.25),
    ("youtube", "mumbai_masala"): (70_300, 0.20),
    ("x", "lahore_looms"): (15_300, 0.08),
    ("x", "mumbai_masala"): (40_900, 0.06),
    ("linkedin", "chittagong_tea"): (8_100, 0.15),
    ("linkedin", "lahore_looms"): (6_200, 0.20),
    ("pinterest", "lahore_looms"): (22_400, 0.30),
}

# share of followers reached by an average image post
REACH_FRACTION = {
    "facebook": 0.06, "instagram": 0.22, "tiktok": 0.7, "youtube": 0.25,
    "x": 0.12, "linkedin": 0.3, "pinterest": 0.45,
}
# likes per reached account, for an average post
LIKE_RATE = {
    "facebook": 0.032, "instagram": 0.055, "tiktok": 0.075, "youtube": 0.045,
    "x": 0.016, "linkedin": 0.024, "pinterest": 0.012,
}
# canonical media type -> (reach multiplier, like-rate multiplier)
MEDIA_EFFECT = {
    "text": (0.45, 0.8), "link": (0.55, 0.6), "image": (1.0, 1.0),
    "carousel": (1.3, 1.15), "video": (2.3, 1.1), "other": (0.8, 0.9),
}
# raw media_type labels each export uses: (label, canonical, weight)
MEDIA_LABELS = {
    "facebook": [("photo", "image", 38), ("video", "video", 14), ("reel", "video", 12),
                 ("link", "link", 15), ("status", "text", 12), ("album", "carousel", 8),
                 ("", "other", 1)],
    "instagram_csv": [("IMAGE", "image", 44), ("CAROUSEL_ALBUM", "carousel", 26),
                      ("VIDEO", "video", 18), ("REELS", "video", 12)],
    "instagram_ndjson": [("image", "image", 42), ("carousel", "carousel", 28),
                         ("reel", "video", 22), ("video", "video", 8)],
    "tiktok": [("video", "video", 92), ("carousel", "carousel", 8)],
    "youtube": [("video", "video", 55), ("short", "video", 25), ("Shorts", "video", 14),
                ("live", "other", 6)],
    "x": [("text", "text", 45), ("image", "image", 28), ("video", "video", 15), ("link", "link", 12)],
    "linkedin": [("text", "text", 24), ("image", "image", 34), ("article", "link", 15),
                 ("video", "video", 15), ("document", "other", 12)],
    "pinterest": [("image", "image", 58), ("video", "video", 24), ("carousel", "carousel", 12),
                  ("idea", "other", 6)],
}

PHRASES = {
    "bn": ["নতুন কালেকশন এসেছে", "ঈদ অফার চলছে", "আজই অর্ডার করুন", "সীমিত স্টক",
           "ফ্রি ডেলিভারি ঢাকার ভেতরে", "হাতে বোনা জামদানি", "সকালের চা", "চায়ের আড্ডা",
           "পহেলা বৈশাখের সাজ"],
    "ur": ["نیا مجموعہ آ گیا ہے", "عید کی خصوصی پیشکش", "آج ہی آرڈر کریں", "گھر کا ذائقہ",
           "بریانی تیار ہے", "ہاتھ سے بنی لان", "مفت ڈیلیوری", "رمضان مبارک"],
    "hi": ["नया कलेक्शन आ गया है", "आज ही ऑर्डर करें", "घर का स्वाद", "दिवाली ऑफर",
           "मसालेदार और ताज़ा"],
    "en": ["Tag a friend who needs this", "Link in bio", "Which one is your favourite?",
           "Packed with love, shipped nationwide", "Weekend special, while stocks last",
           "Thank you for 100k! We couldn't have done it without you", "Eid offer: 20% off, today only"],
    # English lines that only make sense for one brand
    "en:dhaka_threads": ["New arrivals, fresh from the loom", "Jamdani, hand-woven in Narayanganj",
                         'Size guide is in the "Highlights"'],
    "en:chittagong_tea": ['Customer review: "best chai I\'ve had outside Sylhet"', "Rain, tea, repeat",
                          "First flush, straight from the garden"],
    "en:karachi_kitchen": ["Biryani Sunday, order before 2pm", 'Our "secret" masala is back',
                           "Nihari, slow-cooked overnight"],
    "en:lahore_looms": ["Behind the scenes at the workshop", "Lawn 2026, hand-block printed",
                        'Khaddar, "the winter fabric"'],
    "en:mumbai_masala": ['Our "secret" spice mix is back', "Garam masala, small batch, ground weekly",
                         "Chai masala for monsoon evenings"],
}
LANGS = {
    "dhaka_threads": ["bn", "bn", "en"],
    "chittagong_tea": ["bn", "en", "en"],
    "karachi_kitchen": ["ur", "ur", "en"],
    "lahore_looms": ["ur", "en", "en"],
    "mumbai_masala": ["hi", "en", "en"],
}
FLAGS = {"BD": "🇧🇩", "PK": "🇵🇰", "IN": "🇮🇳"}
EMOJI = ["🔥", "✨", "❤️", "🛍️", "🙌🏾", "👩🏽‍💻", "👨‍👩‍👧‍👦", "🧵", "☕", "🍛", "🌶️", "🎉", "📦"]
HASHTAGS = {
    "dhaka_threads": ["#DhakaFashion", "#Jamdani", "#Eid2026", "#MadeInBangladesh"],
    "chittagong_tea": ["#ChaiTime", "#BangladeshTea", "#Chattogram"],
    "karachi_kitchen": ["#KarachiEats", "#Biryani", "#HomeCooked"],
    "lahore_looms": ["#HandWoven", "#MadeInPakistan", "#LahoreCrafts"],
    "mumbai_masala": ["#MumbaiFood", "#Masala", "#DesiSpices"],
}
PRICES = {"BD": ["৳1,250", "৳850", "৳2,400"], "PK": ["Rs. 2,499", "Rs. 650", "Rs. 1,200"],
          "IN": ["₹799", "₹1,499", "₹349"]}


def weighted(rng, items):
    total = sum(w for *_, w in items)
    x = rng.random() * total
    for item in items:
        x -= item[-1]
        if x < 0:
            return item
    return items[-1]


def caption(rng, account, short=False):
    country = ACCOUNTS[account]
    parts = []
    for _ in range(rng.choice([1, 1, 2] if short else [1, 1, 2, 3])):
        lang = rng.choice(LANGS[account])
        if lang == "en" and rng.random() < 0.6:
            lang = "en:" + account
        parts.append(rng.choice(PHRASES[lang]))
    if rng.random() < 0.35:
        parts.append(rng.choice(PRICES[country]))
    sep = ", " if rng.random() < 0.4 else " "
    text = sep.join(parts)
    if rng.random() < 0.6:
        text += " " + "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.2:
        text += " " + FLAGS[country]
    if not short and rng.random() < 0.35:
        tags = HASHTAGS[account]
        text += ("\n" if rng.random() < 0.3 else " ") + " ".join(rng.sample(tags, rng.randint(1, len(tags))))
    return text


def timestamps(rng, account, n, frac_seconds=0.0):
    """n sorted local timestamps in 2026 (08:00-23:59 local), RFC 3339 with the account's offset."""
    oh, om = OFFSETS[ACCOUNTS[account]]
    tz = dt.timezone(dt.timedelta(hours=oh, minutes=om))
    start = dt.datetime(2026, 1, 1, tzinfo=tz)
    out = []
    for _ in range(n):
        day = rng.randrange(365)
        hour = min(23, max(8, int(rng.gauss(19, 3.5))))
        t = start + dt.timedelta(days=day, hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))
        ms = rng.randrange(1000) if rng.random() < frac_seconds else None
        out.append((t, ms))
    out.sort(key=lambda p: (p[0], p[1] or 0))
    result = []
    for t, ms in out:
        s = t.strftime("%Y-%m-%dT%H:%M:%S")
        if ms is not None:
            s += ".%03d" % ms
        result.append((t, s + "%+03d:%02d" % (oh, om)))
    return result


def lognorm(rng, sigma):
    return math.exp(rng.gauss(0, sigma) - sigma * sigma / 2)


def make_post(rng, platform, account, t, media_label, media):
    """The full (all-known) metrics of one post; exports then hide what they don't report."""
    base, growth = AUDIENCE[(platform, account)]
    day = (t - t.replace(month=1, day=1, hour=0, minute=0, second=0)).days
    followers = int(base * (1 + growth * day / 365) * lognorm(rng, 0.01))
    rmul, lmul = MEDIA_EFFECT[media]
    viral = rng.uniform(6, 20) if rng.random() < 0.012 else 1.0
    reach = max(15, int(followers * REACH_FRACTION[platform] * rmul * lognorm(rng, 0.55) * viral))
    impressions = int(reach * rng.uniform(1.12, 1.9))
    video_views = None
    if media == "video":
        video_views = int(reach * rng.uniform(0.75, 1.6))
    if platform == "youtube":
        # impressions are thumbnail impressions; views are a few percent of them
        impressions = int(reach * rng.uniform(3.0, 7.0))
        video_views = int(impressions * rng.uniform(0.03, 0.11) * (1.8 if media_label != "video" else 1.0))
        likes = int(video_views * LIKE_RATE[platform] * lognorm(rng, 0.35))
    else:
        likes = int(reach * LIKE_RATE[platform] * lmul * lognorm(rng, 0.4))
    comments = int(likes * rng.uniform(0.015, 0.12))
    shares = int(likes * rng.uniform(0.01, 0.16) * (1.6 if media == "video" else 1.0))
    saves = int(likes * rng.uniform(0.04, 0.3) * (1.5 if media == "carousel" else 1.0))
    link_like = media == "link" or platform in ("pinterest", "linkedin")
    clicks = int(reach * (rng.uniform(0.01, 0.05) if link_like else rng.uniform(0.001, 0.008)))
    return {
        "platform": platform, "account": account, "media_label": media_label, "media": media,
        "likes": likes, "comments": comments, "shares": shares, "saves": saves,
        "reach": reach, "impressions": impressions, "video_views": video_views,
        "clicks": clicks, "followers_at_post": followers,
    }


def posts_for(rng, platform, label_set, accounts, frac_seconds=0.0):
    """accounts: list of (account, n). Returns posts sorted by time, with created_at."""
    posts = []
    for account, n in accounts:
        for t, ts in timestamps(rng, account, n, frac_seconds):
            label, media, _ = weighted(rng, MEDIA_LABELS[label_set])
            p = make_post(rng, platform, account, t, label, media)
            p["t"] = t.astimezone(dt.timezone.utc)
            p["created_at"] = ts
            posts.append(p)
    posts.sort(key=lambda p: (p["t"], p["account"]))
    return posts


# ------------------------------------------------------------------ writers


def csv_field(value, quote_all=False):
    s = "" if value is None else str(value)
    if quote_all or any(c in s for c in ',"\r\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def grouped(n):
    return None if n is None else "{:,}".format(n)


def write_csv(name, header, rows, bom=False, crlf=False, quote_all=False):
    eol = "\r\n" if crlf else "\n"
    lines = [",".join(csv_field(h, quote_all) for h in header)]
    for r in rows:
        lines.append(",".join(csv_field(v, quote_all) for v in r))
    text = eol.join(lines) + eol
    data = text.encode("utf-8")
    if bom:
        data = b"\xef\xbb\xbf" + data
    with open(os.path.join(OUT, name), "wb") as fh:
        fh.write(data)


def write_ndjson(name, objs, ensure_ascii=False, blank_after=()):
    lines = []
    for i, o in enumerate(objs):
        lines.append(json.dumps(o, ensure_ascii=ensure_ascii, separators=(",", ":")))
        if i in blank_after:
            lines.append("")
    with open(os.path.join(OUT, name), "wb") as fh:
        fh.write(("\n".join(lines) + "\n").encode("utf-8"))


def maybe(rng, p, value):
    """value with probability p, otherwise None (unknown)."""
    return value if rng.random() < p else None


# ------------------------------------------------------------------ the files


def facebook(rng):
    posts = posts_for(rng, "facebook", "facebook",
                      [("dhaka_threads", 480), ("chittagong_tea", 270), ("mumbai_masala", 350)])
    header = ["platform", "account", "id", "created_at", "media_type", "caption", "likes", "comments",
              "shares", "saves", "reach", "impressions", "video_views", "clicks", "followers_at_post"]
    page_ids = {"dhaka_threads": "104857600123", "chittagong_tea": "100064221987", "mumbai_masala": "61550312345"}
    rows = []
    for p in posts:
        has_insights = rng.random() < 0.94  # page insights missing for some posts
        clicks = p["clicks"] if p["media"] == "link" else maybe(rng, 0.4, p["clicks"])
        rows.append([
            "facebook", p["account"], "%s_%d" % (page_ids[p["account"]], rng.randrange(10**15, 10**16)),
            p["created_at"], p["media_label"], caption(rng, p["account"]) if rng.random() < 0.9 else "",
            grouped(p["likes"]), grouped(p["comments"]), grouped(p["shares"]), None,
            grouped(p["reach"] if has_insights else None),
            grouped(p["impressions"] if has_insights else None),
            grouped(p["video_views"]), grouped(clicks), grouped(maybe(rng, 0.9, p["followers_at_post"])),
        ])
    rows[417][6] = "lots"  # bad row 1: a non-integer count
    write_csv("facebook-pages.csv", header, rows, bom=True, crlf=True)
    return "facebook-pages.csv", "csv", "facebook", "dhaka_threads"


def instagram_csv(rng):
    posts = posts_for(rng, "instagram", "instagram_csv", [("karachi_kitchen", 800)])
    header = ["ID", "Account", "Platform", "Created_At", "MEDIA_TYPE", "Caption", "Permalink", "Likes",
              "Comments", "Saves", "Shares", "Reach", "Impressions", "Video_Views", "Followers_At_Post"]
    rows = []
    for p in posts:
        pid = str(rng.randrange(17_840_000_000_000_000, 17_990_000_000_000_000))
        code = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") for _ in range(11))
        rows.append([
            pid, p["account"], "instagram", p["created_at"], p["media_label"],
            caption(rng, p["account"]), "https://www.instagram.com/p/%s/" % code,
            p["likes"], p["comments"], p["saves"], p["shares"], p["reach"], p["impressions"],
            p["video_views"], p["followers_at_post"],
        ])
    write_csv("instagram-karachi_kitchen.csv", header, rows)
    return "instagram-karachi_kitchen.csv", "csv", "instagram", "karachi_kitchen"


def instagram_ndjson(rng):
    posts = posts_for(rng, "instagram", "instagram_ndjson", [("dhaka_threads", 700)], frac_seconds=0.5)
    objs = []
    for p in posts:
        o = {
            "platform": "instagram", "account": p["account"],
            "id": str(rng.randrange(17_840_000_000_000_000, 17_990_000_000_000_000)),
            "created_at": p["created_at"], "media_type": p["media_label"],
            "likes": p["likes"], "comments": p["comments"], "shares": p["shares"], "saves": p["saves"],
            "reach": p["reach"], "impressions": p["impressions"],
        }
        if p["video_views"] is not None:
            o["video_views"] = p["video_views"]
        o["followers_at_post"] = p["followers_at_post"]
        if rng.random() < 0.5:
            o["caption"] = caption(rng, p["account"], short=True)
        if rng.random() < 0.3:
            o["is_comment_enabled"] = rng.random() < 0.9  # unknown field
        objs.append(o)
    write_ndjson("instagram-dhaka_threads.ndjson", objs)
    return "instagram-dhaka_threads.ndjson", "ndjson", "instagram", "dhaka_threads"


def tiktok(rng):
    posts = posts_for(rng, "tiktok", "tiktok", [("dhaka_threads", 420), ("karachi_kitchen", 480)])
    objs = []
    for p in posts:
        as_str = rng.random() < 0.5  # this exporter writes counts as strings half the time
        num = (lambda v: None if v is None else str(v)) if as_str else (lambda v: v)
        o = {
            "id": str(rng.randrange(7_300_000_000_000_000_000, 7_460_000_000_000_000_000)),
            "platform": "tiktok", "account": p["account"],
            "created_at": p["created_at"], "media_type": p["media_label"],
            "video_views": num(p["video_views"] if p["video_views"] is not None else int(p["reach"] * rng.uniform(0.9, 1.4))),
            "likes": num(p["likes"]), "comments": num(p["comments"]), "shares": num(p["shares"]),
            "saves": num(p["saves"]),
        }
        r = rng.random()
        if r < 0.6:
            o["reach"] = num(p["reach"])
        elif r < 0.75:
            o["reach"] = None  # explicit null: unknown
        if rng.random() < 0.3:
            o["caption"] = caption(rng, p["account"], short=True)
        o["duration"] = rng.randint(7, 180) if p["media"] == "video" else 0  # unknown field
        objs.append(o)
    write_ndjson("tiktok.ndjson", objs, ensure_ascii=True, blank_after=(299, len(objs) - 1))
    return "tiktok.ndjson", "ndjson", "tiktok", "dhaka_threads"


def youtube(rng):
    posts = posts_for(rng, "youtube", "youtube",
                      [("chittagong_tea", 160), ("karachi_kitchen", 240), ("mumbai_masala", 200)])
    header = ["platform", "account", "id", "created_at", "media_type", "video_views", "impressions",
              "likes", "comments", "shares", "caption"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    rows = []
    for p in posts:
        desc = caption(rng, p["account"])
        if rng.random() < 0.5:
            desc += "\n\nRecipe & shop: https://example.com/%s\n%s" % (
                p["account"].replace("_", "-"), rng.choice(HASHTAGS[p["account"]]))
        if rng.random() < 0.15:
            desc = 'Watch till the end, the "twist" is worth it!\n' + desc
        rows.append([
            "youtube", p["account"], "".join(rng.choice(alphabet) for _ in range(11)),
            p["created_at"], p["media_label"], grouped(p["video_views"]),
            grouped(maybe(rng, 0.85, p["impressions"])),
            p["likes"], p["comments"], p["shares"], desc,
        ])
    rows[233][3] = "yesterday"  # bad row 2: an unparsable created_at
    write_csv("youtube-channels.csv", header, rows)
    return "youtube-channels.csv", "csv", "youtube", "karachi_kitchen"


def x_posts(rng):
    posts = posts_for(rng, "x", "x", [("lahore_looms", 380), ("mumbai_masala", 520)], frac_seconds=1.0)
    objs = []
    for p in posts:
        o = {
            "platform": "x", "account": p["account"],
            "id": str(rng.randrange(2_000_000_000_000_000_000, 2_060_000_000_000_000_000)),
            "created_at": p["created_at"], "media_type": p["media_label"],
            "likes": p["likes"], "comments": p["comments"], "shares": p["shares"],
        }
        if rng.random() < 0.5:
            o["saves"] = p["saves"]
        if rng.random() < 0.95:
            o["impressions"] = p["impressions"]
        if p["video_views"] is not None:
            o["video_views"] = p["video_views"]
        if p["media"] == "link" or rng.random() < 0.55:
            o["clicks"] = p["clicks"]
        o["followers_at_post"] = p["followers_at_post"]
        if rng.random() < 0.75:
            o["caption"] = caption(rng, p["account"], short=True)
        objs.append(o)
    objs[640]["comments"] = -2  # bad row 3: a negative count
    write_ndjson("x-posts.ndjson", objs)
    return "x-posts.ndjson", "ndjson", "x", "mumbai_masala"


def linkedin(rng):
    posts = posts_for(rng, "linkedin", "linkedin", [("chittagong_tea", 200), ("lahore_looms", 250)])
    header = ["created_at", "id", "account", "platform", "media_type", "impressions", "reach", "clicks",
              "likes", "comments", "shares", "caption"]
    rows = []
    for p in posts:
        rows.append([
            p["created_at"], "urn:li:share:%d" % rng.randrange(7_140_000_000_000_000_000, 7_300_000_000_000_000_000),
            p["account"], "linkedin", p["media_label"], p["impressions"], maybe(rng, 0.3, p["reach"]),
            maybe(rng, 0.95, p["clicks"]), p["likes"], p["comments"], p["shares"],
            caption(rng, p["account"]) if rng.random() < 0.8 else None,
        ])
    write_csv("linkedin-companies.csv", header, rows, quote_all=True)
    return "linkedin-companies.csv", "csv", "linkedin", "lahore_looms"


def pinterest(rng):
    posts = posts_for(rng, "pinterest", "pinterest", [("lahore_looms", 550)])
    header = ["id", "created_at", "media_type", "board", "impressions", "saves", "clicks", "likes",
              "comments", "reach", "video_views", "caption"]
    boards = ["Lawn 2026", "Bridal, Festive & Formal", "Home textiles", "Behind the loom"]
    rows = []
    for p in posts:
        rows.append([
            str(rng.randrange(900_000_000_000_000_000, 990_000_000_000_000_000)),
            p["created_at"], p["media_label"], rng.choice(boards),
            p["impressions"], p["saves"], p["clicks"], maybe(rng, 0.9, p["likes"]), p["comments"],
            maybe(rng, 0.2, p["reach"]), p["video_views"],
            caption(rng, p["account"], short=True) if rng.random() < 0.7 else None,
        ])
    write_csv("pinterest-lahore_looms.csv", header, rows)
    return "pinterest-lahore_looms.csv", "csv", "pinterest", "lahore_looms"


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(SEED)
    manifest = []
    for make in (facebook, instagram_csv, instagram_ndjson, tiktok, youtube, x_posts, linkedin, pinterest):
        name, fmt, platform, account = make(rng)
        manifest.append({"file": name, "platform": platform, "account": account, "format": fmt})
    with open(os.path.join(OUT, "manifest.json"), "w", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps(manifest, indent=2) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, m["file"])) for m in manifest)
    print("wrote %d files (%d bytes) and manifest.json to %s" % (len(manifest), total, os.path.normpath(OUT)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
