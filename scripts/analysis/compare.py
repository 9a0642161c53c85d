#!/usr/bin/env python3
"""Compares Haat's report JSON with reference.py's figures.

  compare.py HAAT_REPORT.json REFERENCE.json [--strict-sketch] [--reports a,b]

HAAT_REPORT.json is `haat result ID --format json` (the Report message in protobuf's JSON
mapping: 64-bit counts as strings, zeros and empty strings left out, absent optional
doubles left out). REFERENCE.json is scripts/analysis/reference.py's output.

Rules:
- counts, sums and strings: exactly equal (an absent count is 0, an absent string "");
- money (decimal text): equal as exact decimals ("40.50" is "40.5");
- rates (ratios of exact sums): present in both or absent in both, relative error <= 1e-9
  (1e-7 for positive_lower_bound: the docs give z to 7 digits, Haat uses 16);
- quantiles from a DDSketch: present in both or absent in both; 0 where the exact value
  is 0 (at most 1e-9), else within 1 % of the exact value at rank floor(q (n - 1));
- distinct counts from the HyperLogLog: within the report's stated bound, 1.625 % of the
  exact count (rounded: + 0.5). An estimate outside it that is exactly what the documented
  sketch gives for those keys is a 1-in-20 event of the estimator, not a bug: a note;
- row order: as docs/reports.md sorts each list.
With --strict-sketch, a quantile or distinct count that is not what the documented sketch
gives (the DDSketch bucket of the exact value, the HyperLogLog estimate of the keys) is a
mismatch too.

Prints one line per mismatch (`MISMATCH report path: ...`) and a summary; exits 1 on any.
"""

import argparse
import json
import sys
from decimal import Decimal, InvalidOperation

RATE_TOL = 1e-9
# docs/reports.md writes the Wilson interval's z as 1.959964; Haat computes with the
# 16-digit quantile 1.959963984540054, which moves the bound by up to a few 1e-9.
RATE_TOLERANCE = {"positive_lower_bound": 1e-7}
SKETCH_TOL = 0.01
HLL_BOUND = 0.01625

SCHEMA = {
    "engagement": {
        "lists": {"rows": ("platform", "account", "media_type")},
        "total": True,
        "counts": ["posts", "likes", "comments", "shares", "saves", "reach", "impressions", "clicks", "video_views",
                   "engagements"],
        "rates": ["engagement_rate_reach", "engagement_rate_impressions", "ctr"],
        "quantiles": ["median_rate_reach", "median_rate_impressions"],
    },
    "attribution": {
        "lists": {"rows": ("currency", "channel")},
        "counts": ["orders", "link_clicks", "by_utm", "by_click_id", "by_referrer"],
        "money": ["revenue", "ad_spend"],
        "rates": ["aov", "share", "conversion_rate", "roas", "claimed_roas"],
        "scalars": ["model"],
    },
    "reviews": {
        "lists": {"rows": ("platform", "account")},
        "total": True,
        "counts": ["reviews", "hidden"],
        "count_lists": ["stars"],
        "rates": ["mean_rating", "share_positive", "positive_lower_bound", "share_with_media", "share_verified",
                  "share_replied", "per_week"],
        "strings": ["first", "last"],
    },
    "ads": {
        "lists": {"rows": ("platform", "account", "campaign")},
        "total": True,
        "counts": ["rows", "rows_incomplete", "impressions", "clicks", "conversions"],
        "money": ["spend", "claimed_revenue"],
        "rates": ["cpm", "cpc", "ctr", "cpa", "claimed_roas"],
        "scalars": ["first", "last"],
        "sub": {"weeks": {"key": ("platform", "week"), "counts": ["impressions", "clicks"], "money": ["spend"],
                          "rates": ["cpm", "cpc"]}},
    },
    "audience": {
        "lists": {"rows": ("platform", "account")},
        "total": True,
        "counts": ["orders", "guest_orders", "inbound_messages"],
        "hll": ["customers", "conversations"],
        "scalar_rates": ["error_bound"],
    },
    "response_time": {
        "lists": {"rows": ("platform", "account", "zone", "hours")},
        "counts": ["conversations", "answered", "unanswered", "resolved"],
        "rates": ["share_within_15m", "share_within_1h", "share_within_24h"],
        "quantiles": ["first_response_p50_s", "first_response_p90_s", "resolution_p50_s", "resolution_p90_s"],
        "sub": {"hours": {"key": ("platform", "account", "zone", "hour"), "counts": ["conversations"],
                          "strings": ["label"], "quantiles": ["median_first_response_s"], "int_key": "hour"}},
    },
}
HOURS_ORDER = {"all": 0, "inside": 1, "outside": 2}


class Comparer:
    def __init__(self, strict_sketch):
        self.strict = strict_sketch
        self.mismatches = []
        self.notes = []
        self.checked = 0

    def bad(self, where, text):
        self.mismatches.append(f"MISMATCH {where}: {text}")

    def note(self, where, text):
        self.notes.append(f"note {where}: {text}")

    # -------------------------------------------------------------- field kinds

    def count(self, where, field, h, r):
        self.checked += 1
        hv = int(h.get(field, 0) or 0)
        rv = int(r.get(field, 0) or 0)
        if hv != rv:
            self.bad(where, f"{field} haat={hv} reference={rv} (diff {hv - rv:+d})")

    def money(self, where, field, h, r):
        self.checked += 1
        try:
            hv = Decimal(h.get(field) or "0")
        except InvalidOperation:
            self.bad(where, f"{field} haat={h.get(field)!r} is not decimal text")
            return
        rv = Decimal(r.get(field) or "0")
        if hv != rv:
            self.bad(where, f"{field} haat={h.get(field)!r} reference={r.get(field)!r} (diff {hv - rv})")

    def string(self, where, field, h, r):
        self.checked += 1
        hv = h.get(field, "")
        rv = r.get(field, "")
        if hv != rv:
            self.bad(where, f"{field} haat={hv!r} reference={rv!r}")

    def rate(self, where, field, h, r, tol=RATE_TOL, default0=False):
        self.checked += 1
        hv, rv = h.get(field), r.get(field)
        if default0:  # a plain (not optional) double: proto3 JSON leaves out 0
            hv = 0.0 if hv is None else hv
            rv = 0.0 if rv is None else rv
        tol = RATE_TOLERANCE.get(field, tol)
        if hv is None and rv is None:
            return
        if (hv is None) != (rv is None):
            self.bad(where, f"{field} haat={'absent' if hv is None else hv} reference={'absent' if rv is None else rv}")
            return
        hv, rv = float(hv), float(rv)
        if abs(hv - rv) > tol * max(abs(rv), abs(hv), 1e-300) and abs(hv - rv) > 1e-15:
            self.bad(where, f"{field} haat={hv!r} reference={rv!r} (rel {abs(hv - rv) / max(abs(rv), 1e-300):.3g})")

    def quantile(self, where, field, h, r):
        self.checked += 1
        hv, rv = h.get(field), r.get(field)
        sk = (r.get("_sketch") or {}).get(field)
        if hv is None and rv is None:
            return
        if (hv is None) != (rv is None):
            self.bad(where, f"{field} haat={'absent' if hv is None else hv} reference={'absent' if rv is None else rv}")
            return
        hv, rv = float(hv), float(rv)
        if rv <= 1e-9:
            ok = hv == 0
        else:
            ok = abs(hv - rv) <= SKETCH_TOL * rv * (1 + 1e-12)
        if not ok:
            extra = f"; the documented sketch gives {sk!r}" if sk is not None else ""
            self.bad(where, f"{field} haat={hv!r} exact={rv!r} (rel {abs(hv - rv) / max(rv, 1e-300):.4f} > 1 %){extra}")
        elif sk is not None and abs(hv - sk) > 1e-9 * max(abs(sk), 1e-300):
            text = f"{field} haat={hv!r} is within 1 % of exact {rv!r} but the documented sketch gives {sk!r}"
            if self.strict:
                self.bad(where, text)
            else:
                self.note(where, text)

    def hll(self, where, field, h, r):
        self.checked += 1
        hv = int(h.get(field, 0) or 0)
        rv = int(r.get(field, 0) or 0)
        sk = (r.get("_sketch") or {}).get(field)
        within = abs(hv - rv) <= HLL_BOUND * rv + 0.5
        if not within:
            if sk is not None and hv == sk:
                self.note(where, f"{field} haat={hv} exact={rv} is outside ±1.625 % but is exactly the documented "
                                 f"HyperLogLog's estimate of these keys (a 1-in-20 event, not a bug)")
            else:
                extra = f"; the documented sketch gives {sk}" if sk is not None else ""
                self.bad(where, f"{field} haat={hv} exact={rv} (rel {abs(hv - rv) / max(rv, 1):.4f} > 1.625 %){extra}")
        elif sk is not None and hv != sk:
            text = f"{field} haat={hv} is within the bound of exact {rv} but the documented sketch gives {sk}"
            if self.strict:
                self.bad(where, text)
            else:
                self.note(where, text)

    # -------------------------------------------------------------- rows and lists

    def row(self, where, spec, h, r):
        for f in spec.get("counts", []):
            self.count(where, f, h, r)
        for f in spec.get("money", []):
            self.money(where, f, h, r)
        for f in spec.get("strings", []):
            self.string(where, f, h, r)
        for f in spec.get("rates", []):
            self.rate(where, f, h, r)
        for f in spec.get("doubles", []):
            self.rate(where, f, h, r, default0=True)
        for f in spec.get("quantiles", []):
            self.quantile(where, f, h, r)
        for f in spec.get("hll", []):
            self.hll(where, f, h, r)
        for f in spec.get("count_lists", []):
            self.checked += 1
            hv = [int(x) for x in h.get(f, [])]
            rv = [int(x) for x in r.get(f, [])]
            if hv != rv:
                self.bad(where, f"{f} haat={hv} reference={rv}")

    def keyed(self, where, key_fields, hrows, rrows, spec, int_key=None):
        def key(row):
            return tuple((int(row.get(k, 0) or 0) if k == int_key else row.get(k, "")) for k in key_fields)

        hmap, rmap = {}, {}
        for row in hrows:
            k = key(row)
            if k in hmap:
                self.bad(where, f"row {k} appears twice in Haat's report")
            hmap[k] = row
        for row in rrows:
            rmap[key(row)] = row
        for k in rmap:
            if k not in hmap:
                self.bad(where, f"row {k} is missing from Haat's report (reference: {brief(rmap[k])})")
        for k in hmap:
            if k not in rmap:
                self.bad(where, f"row {k} is in Haat's report but not in the reference ({brief(hmap[k])})")
        for k, r in rmap.items():
            if k in hmap:
                self.row(f"{where} {list(k)}", spec, hmap[k], r)
        # Order: Haat's keys in the order the reference sorted them (docs/reports.md).
        hkeys = [key(row) for row in hrows if key(row) in rmap]
        rkeys = [key(row) for row in rrows if key(row) in hmap]
        if hkeys != rkeys:
            for i, (a, b) in enumerate(zip(hkeys, rkeys)):
                if a != b:
                    self.bad(where, f"row order differs at position {i}: haat {a}, reference {b}")
                    break

    # -------------------------------------------------------------- reports

    def report(self, name, h, r):
        spec = SCHEMA[name]
        for list_name, key_fields in spec.get("lists", {}).items():
            self.keyed(f"{name}.{list_name}", key_fields, h.get(list_name, []), r.get(list_name, []), spec)
        if spec.get("total"):
            self.row(f"{name}.total", spec, h.get("total", {}), r.get("total", {}))
            for k in ("platform", "account"):
                if h.get("total", {}).get(k, "") != "all":
                    self.bad(f"{name}.total", f"{k} is {h.get('total', {}).get(k)!r}, not 'all'")
        for f in spec.get("scalars", []):
            self.string(name, f, h, r)
        for f in spec.get("scalar_rates", []):
            self.rate(name, f, h, r)
        for sub, sspec in spec.get("sub", {}).items():
            self.keyed(f"{name}.{sub}", sspec["key"], h.get(sub, []), r.get(sub, []), sspec,
                       int_key=sspec.get("int_key"))

    def best_time(self, h, r):
        self.count("best_time", "min_posts", h, r)
        key_fields = ("platform", "account", "zone")
        hacc = {tuple(a.get(k, "") for k in key_fields): a for a in h.get("accounts", [])}
        racc = {tuple(a.get(k, "") for k in key_fields): a for a in r.get("accounts", [])}
        for k in racc:
            if k not in hacc:
                self.bad("best_time.accounts", f"account {k} is missing from Haat's report")
        for k in hacc:
            if k not in racc:
                self.bad("best_time.accounts", f"account {k} is in Haat's report but not in the reference")
        horder = [k for k in hacc if k in racc]  # dicts keep Haat's order
        rorder = [k for k in racc if k in hacc]
        if horder != rorder:
            self.bad("best_time.accounts", f"account order differs: haat {horder[:5]}…, reference {rorder[:5]}…")
        slot_spec = {"counts": ["posts", "posts_with_rate"], "strings": ["label"],
                     "quantiles": ["median_rate", "median_engagements"]}
        for k, ra in racc.items():
            ha = hacc.get(k)
            if ha is None:
                continue
            where = f"best_time {list(k)}"
            self.keyed(where + " slots", ("hour",), ha.get("slots", []), ra["slots"],
                       {**slot_spec, "doubles": ["mean_engagements"]}, int_key="hour")
            self.string(where, "ranked_by", ha, ra)
            hrec = [int(s.get("hour", 0) or 0) for s in ha.get("recommended", [])]
            self.checked += 1
            if hrec != ra["recommended"]:
                hslots = {int(s.get("hour", 0) or 0): s for s in ha.get("slots", [])}
                rslots = {s["hour"]: s for s in ra["slots"]}
                field = "median_rate" if ra["ranked_by"] == "median_rate" else "median_engagements"
                detail = "; ".join(
                    f"{hr}: haat {hslots.get(hr, {}).get(field)} / sketch {rslots.get(hr, {}).get('_sketch', {}).get(field)} "
                    f"posts {rslots.get(hr, {}).get('posts')}" for hr in sorted(set(hrec) | set(ra["recommended"])))
                self.bad(where, f"recommended haat={hrec} reference={ra['recommended']} ({detail})")

    def summary(self, h, r):
        where = "summary"
        self.count(where, "rows", h, r)
        self.count(where, "bad_rows", h, r)
        self.count(where, "sources", h, r)
        self.count(where, "sources_ok", h, r)
        if h.get("missing"):
            self.bad(where, f"missing sources: {h['missing']}")

    def row_errors(self, h, r, ranges=False):
        """Each row error Haat lists must be one of the reference's bad rows, with the same
        column and message for posts (whose reasons docs/formats.md names). With byte
        ranges, row numbers count from each range's first record (docs/connectors.md), so
        only the source, column and message are matched."""
        if ranges:
            seen = set()
            source_kind = {}
            for b in r.get("bad_rows", []):
                seen.add((b["source"], b["column"], b["message"]))
                source_kind[b["source"]] = b["kind"]
            for e in h.get("row_errors", []):
                self.checked += 1
                k = (e.get("source", ""), e.get("column", ""), e.get("message", ""))
                if "bytes " in e.get("message", "") or "misread" in e.get("message", ""):
                    self.bad("summary.row_errors", f"a byte range broke the quote chain: {e}")
                elif k[0] not in source_kind:
                    self.bad("summary.row_errors", f"{k} row {e.get('row')}: the reference has no bad row in that source")
                elif source_kind[k[0]] == "posts" and k not in seen:
                    self.bad("summary.row_errors", f"{k} row {e.get('row')}: the reference has no such bad row")
            return
        ref = {(b["source"], b["row"]): b for b in r.get("bad_rows", [])}
        for e in h.get("row_errors", []):
            self.checked += 1
            k = (e.get("source", ""), int(e.get("row", 0) or 0))
            b = ref.get(k)
            if b is None:
                self.bad("summary.row_errors", f"{k} {e.get('column', '')!r} {e.get('message', '')!r}: "
                                               f"the reference finds that row good")
                continue
            same = (e.get("column", ""), e.get("message", "")) == (b["column"], b["message"])
            if not same:
                text = (f"{k}: haat column {e.get('column', '')!r} message {e.get('message', '')!r}, "
                        f"reference column {b['column']!r} message {b['message']!r}")
                if b["kind"] == "posts":
                    self.bad("summary.row_errors", text)
                else:
                    self.note("summary.row_errors", text + " (the docs name no reasons for this kind)")


def brief(row):
    keep = {k: v for k, v in row.items() if not k.startswith("_") and not isinstance(v, (list, dict))}
    text = json.dumps(keep, ensure_ascii=False)
    return text if len(text) < 300 else text[:300] + "…"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("haat")
    ap.add_argument("reference")
    ap.add_argument("--strict-sketch", action="store_true")
    ap.add_argument("--ranges", action="store_true", help="posts were read in byte ranges: row numbers are per range")
    ap.add_argument("--reports", default="engagement,best_time,attribution,reviews,ads,audience,response_time")
    ap.add_argument("--notes", type=int, default=20, help="print at most this many notes (default 20)")
    args = ap.parse_args()
    with open(args.haat) as f:
        haat = json.load(f)
    if "report" in haat and "summary" not in haat:
        haat = haat["report"]
    with open(args.reference) as f:
        ref = json.load(f)
    c = Comparer(args.strict_sketch)
    c.summary(haat.get("summary", {}), ref["summary"])
    c.row_errors(haat.get("summary", {}), ref, ranges=args.ranges)
    for name in args.reports.split(","):
        name = name.strip()
        if not name:
            continue
        if name not in haat:
            c.bad(name, "Haat's report has no such section")
            continue
        if name == "best_time":
            c.best_time(haat[name], ref[name])
        else:
            c.report(name, haat[name], ref[name])
    for line in c.mismatches:
        print(line)
    for line in c.notes[:args.notes]:
        print(line)
    if len(c.notes) > args.notes:
        print(f"… and {len(c.notes) - args.notes} more notes")
    print(f"compare: {c.checked} figures checked, {len(c.mismatches)} mismatches, {len(c.notes)} notes")
    return 1 if c.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
