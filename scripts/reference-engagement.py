#!/usr/bin/env python3
"""Independent reference implementation of Haat's posts formats and engagement report.

Standard library only. It shares no code with the Swift implementation or with
scripts/gen-samples.py; the rules it follows are the ones in docs/formats.md.

Usage:
  # Engagement report for the bundled demo samples (reads manifest.json):
  scripts/reference-engagement.py [--manifest Sources/HaatFixtures/Samples/manifest.json] [--out FILE]

  # Engagement report for ad-hoc files (format from the extension: .csv or .ndjson/.jsonl):
  scripts/reference-engagement.py --files a.csv b.ndjson --platform facebook --account dhaka_threads

  # Parsed rows and bad rows of one file (the form of the parser fixtures' *.expected.json):
  scripts/reference-engagement.py --parse FILE --platform facebook --account fixture
"""

import argparse
import json
import os
import re
import sys

# Canonical columns, in canonical order. Problems in a row are looked for in this order
# and only the first one is reported.
STRING_FIELDS = ["platform", "account", "id", "created_at", "media_type"]
COUNT_FIELDS = [
    "likes", "comments", "shares", "saves", "reach", "impressions",
    "video_views", "clicks", "followers_at_post",
]
CANONICAL = STRING_FIELDS + COUNT_FIELDS + ["caption"]

# protobuf's JSON mapping also accepts the lowerCamelCase spelling of each field.
CAMEL = {
    "created_at": "createdAt",
    "media_type": "mediaType",
    "video_views": "videoViews",
    "followers_at_post": "followersAtPost",
}

UINT64_MAX = 2**64 - 1

MEDIA_SYNONYMS = {
    "text": "text", "status": "text",
    "image": "image", "photo": "image", "picture": "image",
    "video": "video", "reel": "video", "reels": "video", "short": "video", "shorts": "video",
    "carousel": "carousel", "carousel_album": "carousel", "album": "carousel",
    "link": "link", "article": "link",
    "other": "other",
}

# Reasons (docs/formats.md, "Bad rows").
R_MISSING = "missing"
R_TIMESTAMP = "invalid timestamp"
R_NOT_INT = "not an integer"
R_NEGATIVE = "negative"
R_RANGE = "out of range"
R_FIELDS = "wrong field count"
R_UNTERMINATED = "unterminated quote"
R_JSON = "invalid JSON"
R_NOT_OBJECT = "not an object"
R_NOT_STRING = "not a string"
R_CONTROL = "control character"
R_TOO_LONG = "record too long"
MAX_RECORD_BYTES = 1 << 20
TEXT_FIELDS = ("platform", "account", "id", "created_at", "media_type")

WS = " \t"  # what is trimmed around values


class FileError(Exception):
    """The whole file is unusable (not UTF-8, no header, no id/created_at column)."""


class BadRow(Exception):
    def __init__(self, column, reason):
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


# ---------------------------------------------------------------- values

_PLAIN = re.compile(r"[0-9]+\Z")
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+\Z")


def parse_count_text(text, column):
    """A count written as text (a CSV cell or a JSON string). None means unknown."""
    t = text.strip(WS)
    if t == "":
        return None
    negative = t.startswith("-")
    body = t[1:] if negative else t
    if _PLAIN.match(body) or _GROUPED.match(body):
        if negative:
            raise BadRow(column, R_NEGATIVE)
        value = int(body.replace(",", ""))
        if value > UINT64_MAX:
            raise BadRow(column, R_RANGE)
        return value
    raise BadRow(column, R_NOT_INT)


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))\Z"
)


def _days_in_month(year, month):
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def valid_timestamp(text):
    m = _RFC3339.match(text)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    if year < 1 or not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        return False
    if hour > 23 or minute > 59 or second > 59:
        return False
    if m.group(8) is not None and (int(m.group(9)) > 23 or int(m.group(10)) > 59):
        return False
    return True


def normalise_media_type(text):
    t = text.strip(WS).lower()
    return MEDIA_SYNONYMS.get(t, "other")


def build_post(values, source, count_parser):
    """values: canonical field -> raw value (absent key = column/field absent).

    Returns the canonical post dict or raises BadRow (first problem in canonical order).
    """
    post = {}
    for f in TEXT_FIELDS:
        v = values.get(f)
        if isinstance(v, str) and any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in v):
            raise BadRow(f, R_CONTROL)
    for f in ("platform", "account"):
        v = values.get(f)
        v = v.strip(WS) if v is not None else ""
        post[f] = v if v != "" else (source.get(f) or "")
    ident = (values.get("id") or "").strip(WS)
    if ident == "":
        raise BadRow("id", R_MISSING)
    post["id"] = ident
    ts = (values.get("created_at") or "").strip(WS)
    if ts == "":
        raise BadRow("created_at", R_MISSING)
    if not valid_timestamp(ts):
        raise BadRow("created_at", R_TIMESTAMP)
    post["created_at"] = ts
    post["media_type"] = normalise_media_type(values.get("media_type") or "")
    for f in COUNT_FIELDS:
        post[f] = count_parser(values[f], f) if f in values else None
    post["caption"] = values.get("caption")
    return post


# ---------------------------------------------------------------- CSV


def _decode(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileError(f"not UTF-8: {e}")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def csv_records(text):
    """Yields (fields, error) per record; error is None or R_UNTERMINATED.

    RFC 4180 with the leniencies in docs/formats.md: records end at LF or CRLF (a lone CR
    is data), completely empty lines are skipped, a quote inside an unquoted field is
    data, and text between a closing quote and the next delimiter is appended as is.
    """
    i, n = 0, len(text)
    while i < n:
        if text[i] == "\n":
            i += 1
            continue
        if text.startswith("\r\n", i):
            i += 2
            continue
        fields = []
        error = None
        while True:
            buf = []
            if i < n and text[i] == '"':
                i += 1
                closed = False
                while i < n:
                    c = text[i]
                    if c == '"':
                        if i + 1 < n and text[i + 1] == '"':
                            buf.append('"')
                            i += 2
                            continue
                        i += 1
                        closed = True
                        break
                    buf.append(c)
                    i += 1
                if not closed:
                    error = R_UNTERMINATED
                    fields.append("".join(buf))
                    break
            while i < n and text[i] != "," and text[i] != "\n" and not text.startswith("\r\n", i):
                buf.append(text[i])
                i += 1
            fields.append("".join(buf))
            if i >= n:
                break
            if text[i] == ",":
                i += 1
                continue
            i += 2 if text[i] == "\r" else 1  # end of record
            break
        yield fields, error


def parse_csv(data, source):
    text = _decode(data)
    records = csv_records(text)
    try:
        header, herr = next(records)
    except StopIteration:
        return [], []  # empty file: no header, no rows
    if herr:
        raise FileError("unterminated quote in header")
    index = {}
    for pos, name in enumerate(header):
        key = name.strip(WS).lower()
        if key in CANONICAL and key not in index:  # first occurrence wins
            index[key] = pos
    for req in ("id", "created_at"):
        if req not in index:
            raise FileError(f"header has no {req} column")
    good, bad = [], []
    for rowno, (fields, err) in enumerate(records, start=1):
        try:
            if err:
                raise BadRow("", err)
            # Each field costs its bytes and its delimiter (docs/formats.md, 1 MiB).
            if sum(len(f.encode()) for f in fields) + len(fields) - 1 > MAX_RECORD_BYTES:
                raise BadRow("", R_TOO_LONG)
            if len(fields) != len(header):
                raise BadRow("", R_FIELDS)
            values = {f: fields[p] for f, p in index.items()}
            good.append(build_post(values, source, parse_count_text))
        except BadRow as b:
            bad.append({"row": rowno, "column": b.column, "reason": b.reason})
    return good, bad


# ---------------------------------------------------------------- NDJSON


def _reject_constant(name):
    raise ValueError(f"not JSON: {name}")


class _NegativeZero:
    """JSON's -0: Python would read it as 0, but a leading minus sign is never a count."""


def _parse_int(token):
    return _NegativeZero() if token == "-0" else int(token)


def json_count(value, column):
    if value is None:
        return None
    if isinstance(value, _NegativeZero):
        raise BadRow(column, R_NEGATIVE)
    if isinstance(value, bool):
        raise BadRow(column, R_NOT_INT)
    if isinstance(value, int):
        if value < 0:
            raise BadRow(column, R_NEGATIVE)
        if value > UINT64_MAX:
            raise BadRow(column, R_RANGE)
        return value
    if isinstance(value, str):
        return parse_count_text(value, column)
    raise BadRow(column, R_NOT_INT)  # float (fraction or exponent), array, object


def parse_ndjson(data, source):
    text = _decode(data)
    good, bad = [], []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, line in enumerate(lines, start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if line.strip(" \t\r") == "":
            continue
        try:
            if len(line.encode()) > MAX_RECORD_BYTES:
                raise BadRow("", R_TOO_LONG)
            try:
                obj = json.loads(line, parse_constant=_reject_constant, parse_int=_parse_int)
            except ValueError:
                raise BadRow("", R_JSON)
            if not isinstance(obj, dict):
                raise BadRow("", R_NOT_OBJECT)
            values = {}
            for f in CANONICAL:
                if f in obj:
                    v = obj[f]
                elif f in CAMEL and CAMEL[f] in obj:
                    v = obj[CAMEL[f]]
                else:
                    continue
                if v is None:
                    continue  # null = absent
                if f in STRING_FIELDS and not isinstance(v, str):
                    raise BadRow(f, R_NOT_STRING)
                if f == "caption" and not isinstance(v, str):
                    continue  # ignored by reports anyway
                values[f] = v
            good.append(build_post(values, source, json_count))
        except BadRow as b:
            bad.append({"row": lineno, "column": b.column, "reason": b.reason})
    return good, bad


def parse_file(path, fmt, source):
    with open(path, "rb") as fh:
        data = fh.read()
    if fmt == "csv":
        return parse_csv(data, source)
    if fmt == "ndjson":
        return parse_ndjson(data, source)
    raise FileError(f"unknown format {fmt!r}")


def format_of(path):
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csv":
        return "csv"
    if ext in (".ndjson", ".jsonl"):
        return "ndjson"
    raise FileError(f"{path}: cannot tell the format from the extension")


# ---------------------------------------------------------------- report


class Acc:
    def __init__(self):
        self.posts = 0
        self.sums = {k: 0 for k in ("likes", "comments", "shares", "saves", "clicks", "video_views")}
        self.engagements = 0
        self.reach = 0
        self.eng_reach = 0
        self.impressions = 0
        self.eng_impr = 0
        self.ctr_clicks = 0
        self.ctr_impr = 0

    def add(self, p):
        self.posts += 1
        for k in self.sums:
            if p[k] is not None:
                self.sums[k] += p[k]
        e = sum(p[k] for k in ("likes", "comments", "shares", "saves") if p[k] is not None)
        self.engagements += e
        if p["reach"] is not None:
            self.reach += p["reach"]
            self.eng_reach += e
        if p["impressions"] is not None:
            self.impressions += p["impressions"]
            self.eng_impr += e
            if p["clicks"] is not None:
                self.ctr_clicks += p["clicks"]
                self.ctr_impr += p["impressions"]

    def row(self, platform, account, media_type):
        r = {"platform": platform, "account": account, "media_type": media_type, "posts": self.posts}
        for k in ("likes", "comments", "shares", "saves"):
            r[k] = self.sums[k]
        r["reach"] = self.reach
        r["impressions"] = self.impressions
        r["clicks"] = self.sums["clicks"]
        r["video_views"] = self.sums["video_views"]
        r["engagements"] = self.engagements
        if self.reach > 0:
            r["engagement_rate_reach"] = self.eng_reach / self.reach
        if self.impressions > 0:
            r["engagement_rate_impressions"] = self.eng_impr / self.impressions
        if self.ctr_impr > 0:
            r["ctr"] = self.ctr_clicks / self.ctr_impr
        return r


def engagement_report(jobs):
    """jobs: list of (path, display_name, format, source dict)."""
    groups = {}
    total = Acc()
    good_rows = 0
    details = []
    for path, name, fmt, source in jobs:
        try:
            good, bad = parse_file(path, fmt, source)
        except FileError as e:
            raise FileError(f"{name}: {e}")
        good_rows += len(good)
        for b in bad:
            details.append({"file": name, **b})
        for p in good:
            key = (p["platform"], p["account"], p["media_type"])
            groups.setdefault(key, Acc()).add(p)
            total.add(p)
    rows = [groups[k].row(*k) for k in sorted(groups)]
    return {
        "rows": rows,
        "total": total.row("all", "all", "all"),
        "good_rows": good_rows,
        "bad_rows": len(details),
        "bad_row_details": details,
    }


def dump(obj, out):
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    if out:
        with open(out, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    default_manifest = os.path.join(here, "..", "Sources", "HaatFixtures", "Samples", "manifest.json")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", default=default_manifest, help="samples manifest (default: the bundled one)")
    ap.add_argument("--files", nargs="+", help="ad-hoc files instead of a manifest")
    ap.add_argument("--parse", metavar="FILE", help="print the parsed rows and bad rows of one file")
    ap.add_argument("--platform", default="", help="source platform (default for rows without one)")
    ap.add_argument("--account", default="", help="source account (default for rows without one)")
    ap.add_argument("--out", help="write JSON here instead of stdout")
    args = ap.parse_args(argv)
    source = {"platform": args.platform, "account": args.account}
    try:
        if args.parse:
            good, bad = parse_file(args.parse, format_of(args.parse), source)
            dump({"source": source, "rows": good, "bad_rows": bad}, args.out)
            return 0
        if args.files:
            jobs = [(p, os.path.basename(p), format_of(p), source) for p in args.files]
        else:
            base = os.path.dirname(os.path.abspath(args.manifest))
            with open(args.manifest, encoding="utf-8") as fh:
                manifest = json.load(fh)
            jobs = [
                (os.path.join(base, m["file"]), m["file"], m["format"],
                 {"platform": m.get("platform") or "", "account": m.get("account") or ""})
                for m in manifest
            ]
        dump(engagement_report(jobs), args.out)
    except (FileError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
