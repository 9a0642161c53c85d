#!/usr/bin/env python3
"""Writes the small quirk fixtures for the posts parser tests into Tests/HaatRecordsTests/Fixtures/.

Each fixture is written byte for byte from here (BOMs, CRLFs and unterminated quotes are
hard to keep intact in an editor), and next to it <name>.expected.json, produced by the
independent reference parser in scripts/reference-engagement.py with the source defaults
platform "facebook", account "fixture":

  {"source": {...}, "rows": [parsed good rows, canonical field names, counts as integers or null],
   "bad_rows": [{"row": n, "column": "...", "reason": "..."}]}

Rows are numbered from 1 after the header (CSV records, not lines) and by line for NDJSON
(docs/formats.md).
"""

import importlib.util
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "HaatRecordsTests", "Fixtures")
SOURCE = {"platform": "facebook", "account": "fixture"}

BOM = "\ufeff"

FIXTURES = {}

# A spreadsheet export: BOM, CRLF everywhere (also inside a quoted caption), header in
# another case, a trailing CRLF.
FIXTURES["bom-crlf.csv"] = BOM + "\r\n".join([
    "Platform,Account,ID,Created_At,Media_Type,Likes,Comments,Shares,Reach,Impressions,Caption",
    "facebook,dhaka_threads,1001,2026-03-01T18:30:00+06:00,photo,120,4,2,3100,4020,Eid collection",
    'facebook,dhaka_threads,1002,2026-03-02T09:15:00+06:00,video,98,7,11,5230,6100,"Line one\r\nline two"',
    "facebook,dhaka_threads,1003,2026-03-03T21:00:00+06:00,status,15,0,0,,,",
]) + "\r\n"

# RFC 4180 quoting: commas, doubled quotes, newlines inside quotes, a quoted empty count,
# quoted ids and timestamps, a caption that is only a quote character, no final newline.
FIXTURES["quoted-multiline.csv"] = "\n".join([
    "platform,account,id,created_at,media_type,likes,comments,shares,saves,caption",
    'instagram,karachi_kitchen,"p1",2026-04-10T12:00:00+05:00,IMAGE,10,1,0,2,"Biryani, raita, and salad"',
    'instagram,karachi_kitchen,p2,"2026-04-11T12:00:00+05:00",VIDEO,20,"",1,3,"She said ""wow"", then ""more!"""',
    'instagram,karachi_kitchen,p3,2026-04-12T12:00:00+05:00,CAROUSEL_ALBUM,30,3,"",4,"Line 1\nLine 2, with a comma\n\n""Line 4"""',
    'instagram,karachi_kitchen,p4,2026-04-13T12:00:00+05:00,reel,40,4,2,"",""""',
    'instagram,karachi_kitchen,p5,2026-04-14T12:00:00+05:00,text,"5",0,0,0,""',
])  # no newline at the end of the file

# Unicode everywhere: emoji with skin tones, ZWJ sequences and flags, Bengali, Urdu (right
# to left, also in account names), a right-to-left mark, Arabic-Indic digits in a caption.
FIXTURES["unicode.csv"] = "\n".join([
    "platform,account,id,created_at,media_type,likes,comments,caption",
    "instagram,ঢাকা_থ্রেডস,u1,2026-05-01T10:00:00+06:00,image,11,1,নতুন কালেকশন এসেছে 🇧🇩",
    "instagram,کراچی_کچن,u2,2026-05-01T11:00:00+05:00,video,22,2,نیا مجموعہ آ گیا ہے 🇵🇰",
    'tiktok,lahore_looms,u3,2026-05-02T20:00:00+05:00,video,33,3,"👩🏽‍💻 👨‍👩‍👧‍👦 ❤️ 🏳️‍🌈, all in one"',
    "x,\u200fلاہور_لومز,u4,2026-05-03T08:45:00+05:00,text,44,4,\u200fقیمت ۱۲۳ روپے فقط",
    "youtube,mumbai_masala,u5,2026-05-04T19:30:00+05:30,short,55,5,नया कलेक्शन आ गया है 🇮🇳🌶️",
]) + "\n"

# Counts with thousands separators (only valid inside quotes), leading zeros, spaces around
# values, uint64's maximum, and grouped numbers that are not well formed.
FIXTURES["grouped-numbers.csv"] = "\n".join([
    "platform,account,id,created_at,media_type,likes,comments,shares,reach,impressions,video_views",
    'youtube,chittagong_tea,g1,2026-06-01T18:00:00+06:00,video,"12,345",678,"1,000","1,234,567","2,345,678","12,345,678"',
    "youtube,chittagong_tea,g2,2026-06-02T18:00:00+06:00,video,999,0,007,12345,23456,345678",
    'youtube,chittagong_tea,g3,2026-06-03T18:00:00+06:00,short," 42 ",\t1\t,"0","18,446,744,073,709,551,615",18446744073709551615,',
    'youtube,chittagong_tea,g4,2026-06-04T18:00:00+06:00,video,"12,34",1,1,1,1,1',
    'youtube,chittagong_tea,g5,2026-06-05T18:00:00+06:00,video,1,1,1,"1,2345",1,1',
    'youtube,chittagong_tea,g6,2026-06-06T18:00:00+06:00,video,1,1,1,1,18446744073709551616,1',
    'youtube,chittagong_tea,g7,2026-06-07T18:00:00+06:00,video,",123",1,1,1,1,1',
]) + "\n"

# No platform/account columns (the source gives them), no media_type column (so "other"),
# no reach column (unknown), and empty counts (unknown, not zero).
FIXTURES["missing-columns.csv"] = "\n".join([
    "id,created_at,likes,comments,shares,impressions,clicks",
    "m1,2026-07-01T10:00:00+05:30,10,2,1,500,5",
    "m2,2026-07-02T10:00:00+05:30,,,,,",
    "m3,2026-07-03T10:00:00Z,7,,0,300,",
    "m4,2026-07-04T10:00:00.250+05:30,0,0,0,0,0",
]) + "\n"

# Bad rows of every kind, mixed with good ones. The last record opens a quote that never
# closes, so it swallows the rest of the file.
FIXTURES["bad-rows.csv"] = "\n".join([
    "platform,account,id,created_at,media_type,likes,comments,shares,reach",
    "facebook,dhaka_threads,b1,2026-08-01T18:00:00+06:00,photo,10,1,0,100",   # 1 good
    "facebook,dhaka_threads,b2,2026-08-01T18:00:00+06:00,photo,lots,1,0,100",  # 2 likes not an integer
    "facebook,dhaka_threads,b3,yesterday,photo,10,1,0,100",                    # 3 invalid timestamp
    "facebook,dhaka_threads,b4,2026-08-02T18:00:00+06:00,photo,10,-5,0,100",  # 4 negative
    "facebook,dhaka_threads,,2026-08-02T18:00:00+06:00,photo,10,1,0,100",     # 5 id missing
    "facebook,dhaka_threads,b6,,photo,10,1,0,100",                            # 6 created_at missing
    "facebook,dhaka_threads,b7,2026-08-03T18:00:00,photo,10,1,0,100",         # 7 no offset
    "facebook,dhaka_threads,b8,2026-02-30T18:00:00+06:00,photo,10,1,0,100",   # 8 no such day
    "facebook,dhaka_threads,b9,2026-08-04t18:00:00.5z,photo,10,1,0,100",      # 9 good (lower-case t, z)
    "facebook,dhaka_threads,b10,2026-08-05T18:00:00+06:00,photo,1.5,1,0,100", # 10 not an integer
    "facebook,dhaka_threads,b11,2026-08-05T18:00:00+06:00,photo,১২,1,0,100",  # 11 Bengali digits
    "facebook,dhaka_threads,b12,2026-08-06T18:00:00+06:00,photo,10,1,0",      # 12 wrong field count
    "facebook,dhaka_threads,  ,2026-08-06T18:00:00+06:00,photo,10,1,0,100",   # 13 blank id: missing
    "facebook,dhaka_threads,b14,2026-13-01T18:00:00+06:00,photo,x,1,0,100",   # 14 first problem only
    "facebook,dhaka_threads,b15,2026-08-07T18:00:00+06:00,photo,10,1,0,-0",   # 15 negative
    "facebook,dhaka_threads,b16,2026-08-07T18:00:00+06:00,photo,10,1,0,100",  # 16 good
    'facebook,dhaka_threads,b17,2026-08-08T18:00:00+06:00,photo,10,1,0,"100', # 17 unterminated quote
    "facebook,dhaka_threads,b18,2026-08-08T18:00:00+06:00,photo,10,1,0,100",  #    (inside 17's quote)
]) + "\n"

# NDJSON: numbers and decimal strings, null and missing counts, an unknown field, blank and
# whitespace-only lines, a CRLF line, lowerCamelCase names (protobuf's JSON mapping), and
# lines that are bad in different ways. Rows are line numbers.
NDJSON_LINES = [
    '{"platform":"instagram","account":"dhaka_threads","id":"n1","created_at":"2026-09-01T18:00:00+06:00","media_type":"reel","likes":120,"comments":"7","shares":3,"saves":"12","reach":"5000","impressions":6200,"video_views":"4,321","caption":"নতুন কালেকশন এসেছে ✨"}',
    '{"id":"n2","created_at":"2026-09-02T18:00:00+06:00","media_type":"photo","likes":10,"reach":null,"permalink":"https://example.com/n2"}',
    '',
    '{"id":"n3","created_at":"2026-09-03T18:00:00+06:00","likes":1,"comments":oops}',
    '{"platform":"x","account":"mumbai_masala","id":"n4","createdAt":"2026-09-04T18:00:00.123+05:30","mediaType":"link","likes":5,"clicks":"2","impressions":400,"videoViews":0,"followersAtPost":40900}',
    '   ',
    '{"id":"n5","created_at":"2026-09-05T18:00:00+06:00","likes":1.5}',
    '{"id":6,"created_at":"2026-09-06T18:00:00+06:00"}',
    '["n7","2026-09-07T18:00:00+06:00"]',
    '{"id":"n8","created_at":"2026-09-08T18:00:00+06:00","shares":"-3"}',
    '{"id":"n9","created_at":"2026-09-09T18:00:00+06:00","media_type":"CAROUSEL_ALBUM","saves":18446744073709551616}',
    '{"id":"n10","created_at":"2026-09-10T18:00:00+06:00","media_type":"article","likes":"","caption":"\\u0646\\u06cc\\u0627 \\ud83c\\uddf5\\ud83c\\uddf0"}\r',
    '{"id":"n11","created_at":"2026-09-11T18:00:00+06:00","likes":true}',
]
FIXTURES["posts.ndjson"] = "\n".join(NDJSON_LINES) + "\n"


def load_reference():
    spec = importlib.util.spec_from_file_location("reference", os.path.join(HERE, "reference-engagement.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    ref = load_reference()
    os.makedirs(OUT, exist_ok=True)
    for name, text in FIXTURES.items():
        path = os.path.join(OUT, name)
        with open(path, "wb") as fh:
            fh.write(text.encode("utf-8"))
        good, bad = ref.parse_file(path, ref.format_of(path), SOURCE)
        expected = {"source": SOURCE, "rows": good, "bad_rows": bad}
        stem = name.rsplit(".", 1)[0]
        with open(os.path.join(OUT, stem + ".expected.json"), "w", encoding="utf-8", newline="\n") as fh:
            fh.write(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")
        print("%-22s %d good, %d bad" % (name, len(good), len(bad)))


if __name__ == "__main__":
    main()
