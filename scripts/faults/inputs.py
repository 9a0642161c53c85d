"""Inputs of the fault scenarios and their reference reports.

Small canonical posts CSV files (docs/formats.md), written deterministically from a seed,
and the report a job over them must produce, computed without Haat by
scripts/reference-engagement.py (an independent implementation of the formats and the
engagement report). A job's fault-free report is the reference: every scenario's report
must equal it, whatever was done to the cluster meanwhile.
"""

import csv
import gzip
import importlib.util
import io
import os
import random
import zlib

from lib import REPO

PLATFORMS = ["facebook", "instagram", "tiktok", "youtube", "x", "linkedin", "pinterest"]
ACCOUNTS = ["dhaka_threads", "karachi_kitchen", "mumbai_masala", "lahore_looms", "chittagong_tea"]
MEDIA = ["image", "video", "carousel", "text", "link", "reel", "photo", "REELS", "", "live", "album"]
CAPTIONS = ["Eid sale", "নতুন কালেকশন এসেছে", "\"Limited\" drop, today only", "مفت ڈیلیوری 🇵🇰",
            "two\nlines", "chai ☕", ""]
HEADER = ["platform", "account", "id", "created_at", "media_type", "likes", "comments", "shares", "saves",
          "reach", "impressions", "video_views", "clicks", "caption"]

_REFERENCE = None


def reference_module():
    """scripts/reference-engagement.py, loaded as a module."""
    global _REFERENCE
    if _REFERENCE is None:
        path = os.path.join(REPO, "scripts", "reference-engagement.py")
        spec = importlib.util.spec_from_file_location("reference_engagement", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _REFERENCE = module
    return _REFERENCE


def write_posts_csv(path, rng, rows, bad_row=False, platform=None, account=None):
    """`rows` posts; with `bad_row`, one of them has likes "lots" (a bad row)."""
    bad_at = rng.randrange(rows) if bad_row else -1
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for i in range(rows):
        def count(top, known=0.85):
            return str(rng.randint(0, top)) if rng.random() < known else ""
        day = rng.randint(1, 28)
        row = [
            platform or rng.choice(PLATFORMS), account or rng.choice(ACCOUNTS), f"p{rng.randrange(10**12)}",
            f"2026-03-{day:02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00+06:00",
            rng.choice(MEDIA), "lots" if i == bad_at else count(5000, 0.95), count(400), count(300), count(300),
            count(90000), count(150000), count(50000), count(2000), rng.choice(CAPTIONS)]
        writer.writerow(row)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(out.getvalue())


def make_files(directory, count, seed, rows=(8, 30), bad_every=5, prefix="posts"):
    """Writes `count` small CSV files; returns [{"file", "path", "platform", "account"}]."""
    os.makedirs(directory, exist_ok=True)
    rng = random.Random(seed)
    files = []
    for i in range(count):
        name = f"{prefix}-{i:03d}.csv"
        path = os.path.join(directory, name)
        platform, account = rng.choice(PLATFORMS), rng.choice(ACCOUNTS)
        write_posts_csv(path, rng, rng.randint(*rows), bad_row=(bad_every and i % bad_every == 0),
                        platform=None if i % 3 else platform, account=None if i % 4 else account)
        files.append({"file": name, "path": path, "platform": platform, "account": account})
    return files


def write_gzip(path, data):
    with open(path, "wb") as fh:
        fh.write(gzip.compress(data, 6))


def write_truncated_gzip(path, data):
    """A gzip stream of `data` cut in the middle (no trailer)."""
    whole = gzip.compress(data, 6)
    with open(path, "wb") as fh:
        fh.write(whole[: len(whole) // 2])


def write_gzip_bomb(path, expanded_bytes=256 << 20):
    """A valid gzip stream that expands about 1000× (zeros after a CSV header)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    with open(path, "wb") as fh:
        fh.write(compressor.compress(b"id,created_at,likes\n"))
        for _ in range(expanded_bytes >> 20):
            fh.write(compressor.compress(chunk))
        fh.write(compressor.flush())


# ---------------------------------------------------------------- reference reports


class _Parsed:
    cache = {}


def _parse(path, fmt, platform, account):
    key = (path, fmt, platform, account)
    if key not in _Parsed.cache:
        ref = reference_module()
        good, bad = ref.parse_file(path, fmt, {"platform": platform, "account": account})
        _Parsed.cache[key] = (good, bad, os.path.getsize(path))
    return _Parsed.cache[key]


def reference_report(sources):
    """The report of a job whose sources (in task order) are
    [{"name", "path", "format", "platform", "account"}], every one of them read whole.

    {"rows": [...], "total": {...}, "summary": {"tasks", "sources", "sources_ok", "rows",
    "bad_rows", "bytes", "row_errors": [{"source", "row", "column", "message"}]}}"""
    ref = reference_module()
    groups = {}
    total = ref.Acc()
    good_rows = bad_rows = size = 0
    row_errors = []
    for source in sources:
        good, bad, nbytes = _parse(source["path"], source.get("format", "csv"), source.get("platform", ""),
                                   source.get("account", ""))
        good_rows += len(good)
        bad_rows += len(bad)
        size += nbytes
        # Haat's worker keeps 20 row errors per task; a report lists the first 50.
        for b in bad[:20]:
            row_errors.append({"source": source["name"], "row": b["row"], "column": b["column"], "message": b["reason"]})
        for post in good:
            key = (post["platform"], post["account"], post["media_type"])
            acc = groups.get(key)
            if acc is None:
                acc = groups[key] = ref.Acc()
            acc.add(post)
            total.add(post)
    return {
        "rows": [groups[k].row(*k) for k in sorted(groups)],
        "total": total.row("all", "all", "all"),
        "summary": {"rows": good_rows, "bad_rows": bad_rows, "bytes": size, "row_errors": row_errors[:50]},
    }


def job_reference(all_sources, ok_sources):
    """The reference of a job with `all_sources` of which only `ok_sources` can succeed."""
    report = reference_report(ok_sources)
    names = {s["name"] for s in all_sources}
    report["summary"].update(tasks=len(all_sources), sources=len(names), sources_ok=len(ok_sources))
    return report
