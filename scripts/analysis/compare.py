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
- row order: as docs/reports.md sorts each list (the four reports below do not say: their
  keys by UTF-8 bytes, with the `all` channel last, as Haat does);
- media_lift: counts and mean likes exact; medians within 1 % of the exact lower median;
  geomean_ratio, welch_t/df/p to 1e-9 of the exact moments of ln(1 + likes) (t within 1e-9
  absolute near 0, p within 1e-12 absolute); detectable_ratio = exp(c SE) with c within 1e-8 of
  the docs' 2.801585219; median_ratio the row's own medians' ratio, present exactly
  when the text median is above 0; each bootstrap interval holds its ratio; the verdict's
  kind is what the interval of the ratio of medians (of geometric means when the text
  median is 0) says (above 1 throughout: more; below: fewer; else cannot say) and its
  numbers are that interval's, rounded; "too few" and "no text" verdicts word for word;
- frequency and cohorts: every figure exact (ratios to 1e-9);
- clv: historic figures exact; for each store Haat fits, BG/NBD (r, alpha, a, b) and
  Gamma-Gamma (p, q, gamma) within 1 % of `lifetimes`' fit and log-likelihoods within 1e-3,
  both evaluated here at each side's parameters (Haat's stated log-likelihoods must be
  the docs' formula at its parameters, 1e-6); a parameter that lifetimes' Hessian says the
  data do not identify (standard error of its log above 1) may differ at the same
  likelihood (a note), and where lifetimes stops short of Haat's maximum only Haat's
  being no lower is checked; predicted_purchases/spend/clv to 1e-6 of the docs' formulas
  at Haat's own parameters; "too few customers" notes word for word.
With --strict-sketch, a quantile or distinct count that is not what the documented sketch
gives (the DDSketch bucket of the exact value, the HyperLogLog estimate of the keys) is a
mismatch too.

Prints one line per mismatch (`MISMATCH report path: ...`) and a summary; exits 1 on any.
"""

import argparse
import json
import math
import re
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
    "frequency": {
        "lists": {"rows": ("platform", "account", "zone", "min_posts")},
        "int_key": ("min_posts",),
        "counts": ["max_posts", "weeks", "posts", "engagements", "engagements_with_reach", "reach"],
        "strings": ["band"],
        "doubles": ["engagements_per_post"],
        "rates": ["engagement_rate"],
    },
    "cohorts": {
        "lists": {"rows": ("platform", "account", "cohort", "channel")},
        "counts": ["customers"],
        "count_lists": ["active"],
        "rate_lists": ["share"],
        "scalar_counts": ["months"],
    },
}
HOURS_ORDER = {"all": 0, "inside": 1, "outside": 2}

DETECT_Z = 2.801585219
DETECT_Z_HALF_ULP = 1e-8  # docs/reports.md states c to 9 decimals
CLV_PARAMS = ("r", "alpha", "a", "b", "bgnbd_log_likelihood", "p", "q", "gamma", "gamma_gamma_log_likelihood")
CLV_PARAM_TOL = 0.01
CLV_LL_TOL = 1e-3
CLV_HORIZON = 52.0
# Equation (10) is evaluated in doubles by Haat and here; when a < 1 and b is large (a fit
# running off along the a -> 0, b -> infinity ridge) its 1 - (...)^(r+x) 2F1(...) cancels
# and both lose up to ~1e-8: agreement is asked to 1e-6 (a wrong formula misses by far more).
CLV_PREDICTION_TOL = 1e-6


def num(v):
    """A double of protobuf's JSON mapping (a number, or "Infinity", "-Infinity", "NaN"), or None."""
    if v is None:
        return None
    return float(v)


def bgnbd_ll(params, summ):
    """docs/reports.md "The clv report": the BG/NBD log-likelihood summed over customers,
    evaluated without cancellation (x is a whole number of repeat purchases, so the
    ln-gamma differences are sums of logarithms, and r ln alpha - (r + x) ln(alpha + T) is
    -r log1p(T / alpha) - x ln(alpha + T)): fits that run off to r, alpha ~ 1e10 stay exact."""
    r, alpha, a, b = params
    total = []
    for x, t_x, T in zip(summ["x"], summ["t_x"], summ["T"]):
        x = int(round(x))
        terms = [math.log(r + i) + math.log(b + i) - math.log(a + b + i) for i in range(x)]
        a13 = -r * math.log1p(T / alpha) - x * math.log(alpha + T)
        if x > 0:
            d = (math.log(a) - math.log(b + x - 1)
                 + (r + x) * math.log1p((T - t_x) / (alpha + t_x)))  # A4 - A3
            tail = d + math.log1p(math.exp(-d)) if d > 0 else math.log1p(math.exp(d))
            terms.append(a13 + tail)
        else:
            terms.append(a13)
        total.append(math.fsum(terms))
    return math.fsum(total)


def gg_ll(params, summ):
    """The Gamma-Gamma log-likelihood over the repeat customers with m_x > 0 (px ln(x m) -
    px ln(gamma + x m) as -px log1p(gamma / (x m)))."""
    p, q, g = params
    lg = math.lgamma
    total = []
    for x, m in zip(summ["x"], summ["m"]):
        if x > 0 and m > 0:
            px = p * x
            total.append(math.fsum([lg(px + q), -lg(px), -lg(q), q * math.log(g), -math.log(m),
                                    -px * math.log1p(g / (x * m)), -q * math.log(g + x * m)]))
    return math.fsum(total)


def hyp2f1(a, b, c, z):
    """Gauss's hypergeometric series for a, b > 0, c > -1 (not 0) and 0 <= z < 1: every term
    after the first has the sign of c, so the sum has no cancellation but 1 + the rest (c is
    a + b + x - 1, below 0 only for x = 0 and a + b < 1)."""
    term, rest, k = 1.0, 0.0, 0
    while True:
        term *= (a + k) * (b + k) / ((c + k) * (k + 1)) * z
        rest += term
        k += 1
        if abs(term) <= 1e-17 * abs(rest) or k > 1_000_000:
            return 1.0 + rest


def bgnbd_expected(params, x, t_x, T, t):
    """docs/reports.md's equation (10): the expected purchases in the next t."""
    r, alpha, a, b = params
    z = t / (alpha + T + t)
    f = hyp2f1(r + x, b + x, a + b + x - 1, z)
    num_ = (a + b + x - 1) / (a - 1) * (1 - math.exp(-(r + x) * math.log1p(t / (alpha + T))) * f)
    den = 1 + (a / (b + x - 1) * math.exp((r + x) * math.log1p((T - t_x) / (alpha + t_x))) if x > 0 else 0)
    return num_ / den



class Comparer:
    def __init__(self, strict_sketch):
        self.strict = strict_sketch
        self.mismatches = []
        self.notes = []
        self.checked = 0
        self.detect_constants = set()

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
        for f in spec.get("rate_lists", []):
            self.checked += 1
            hv = [num(x) for x in h.get(f, [])]
            rv = r.get(f, [])
            if len(hv) != len(rv) or any(abs(a - b) > RATE_TOL * max(abs(a), abs(b)) for a, b in zip(hv, rv)):
                self.bad(where, f"{f} haat={hv} reference={rv}")

    def keyed(self, where, key_fields, hrows, rrows, spec, int_key=None):
        def key(row):
            ints = int_key if isinstance(int_key, tuple) else (int_key,)
            return tuple((int(row.get(k, 0) or 0) if k in ints else row.get(k, "")) for k in key_fields)

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
            self.keyed(f"{name}.{list_name}", key_fields, h.get(list_name, []), r.get(list_name, []), spec,
                       int_key=spec.get("int_key"))
        if spec.get("total"):
            self.row(f"{name}.total", spec, h.get("total", {}), r.get("total", {}))
            for k in ("platform", "account"):
                if h.get("total", {}).get(k, "") != "all":
                    self.bad(f"{name}.total", f"{k} is {h.get('total', {}).get(k)!r}, not 'all'")
        for f in spec.get("scalars", []):
            self.string(name, f, h, r)
        for f in spec.get("scalar_rates", []):
            self.rate(name, f, h, r)
        for f in spec.get("scalar_counts", []):
            self.count(name, f, h, r)
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

    # -------------------------------------------------------------- media_lift

    def media_lift(self, h, r):
        """docs/reports.md "The media_lift report": counts and means exact; medians within
        1 % of the exact lower median; the geometric-mean ratio and Welch's t, df and p to
        1e-9 of the exact moments of ln(1 + likes), the detectable ratio exp(c SE) with c
        the docs' 2.801585219; the bootstrap intervals only as far as they
        can be checked (each holds its ratio; the verdict's kind is what the interval says)."""
        self.count("media_lift", "min_posts", h, r)
        self.count("media_lift", "resamples", h, r)
        spec = {"counts": ["posts", "posts_with_likes", "text_posts", "text_posts_with_likes"],
                "rates": ["mean_likes", "text_mean_likes", "geomean_ratio", "welch_df"],
                "quantiles": ["median_likes", "text_median_likes"]}
        key_fields = ("platform", "account", "media_type")
        self.keyed("media_lift.rows", key_fields, h.get("rows", []), r.get("rows", []), spec)
        hmap = {tuple(x.get(k, "") for k in key_fields): x for x in h.get("rows", [])}
        for rr in r.get("rows", []):
            k = tuple(rr.get(f, "") for f in key_fields)
            hr = hmap.get(k)
            if hr is None:
                continue
            self.media_lift_row(f"media_lift.rows {list(k)}", hr, rr)

    def media_lift_row(self, where, h, r):
        kind = r["_kind"]
        verdict = h.get("verdict", "")
        self.checked += 1
        interval_fields = ("median_ratio", "median_ratio_low", "median_ratio_high", "geomean_ratio",
                           "geomean_ratio_low", "geomean_ratio_high", "welch_t", "welch_df", "welch_p",
                           "detectable_ratio")
        if kind in ("no text", "too few"):
            if verdict != r["verdict"]:
                self.bad(where, f"verdict haat={verdict!r} reference={r['verdict']!r}")
            present = [f for f in interval_fields if f in h]
            if present:
                self.bad(where, f"{kind}: Haat gives {present}, the docs give no ratio, interval or test")
            return
        # The detectable ratio, exp(c SE): docs/reports.md gives c = z_0.975 + z_0.80 =
        # 2.801585219.
        self.checked += 1
        hd, se = num(h.get("detectable_ratio")), r.get("_se")
        if se == 0:
            # Neither side varies: the docs leave the ratio out (and the verdict's clause).
            if hd is not None:
                self.bad(where, f"detectable_ratio haat={hd!r} with SE 0")
        elif (hd is None) != ("detectable_ratio" not in r):
            self.bad(where, f"detectable_ratio haat={'absent' if hd is None else hd} "
                            f"reference={r.get('detectable_ratio', 'absent')}")
        elif hd is not None and se > 0:
            c = math.log(hd) / se
            if abs(c - DETECT_Z) > DETECT_Z_HALF_ULP:
                self.bad(where, f"detectable_ratio haat={hd!r} is exp({c:.9f} SE), not exp(2.801585219 SE) = "
                                f"{r['detectable_ratio']!r} (SE {se!r})")
            else:
                self.detect_constants.add(round(c, 8))
        # Welch's t: relative 1e-9, or 1e-9 absolute near 0 (a difference of means near 0 has
        # no relative precision); p to 1e-9 relative or 1e-12 absolute.
        for f, abs_tol in (("welch_t", 1e-9), ("welch_p", 1e-12)):
            self.checked += 1
            hv, rv = num(h.get(f)), r.get(f)
            if (hv is None) != (rv is None):
                self.bad(where, f"{f} haat={'absent' if hv is None else hv} reference={'absent' if rv is None else rv}")
            elif hv is not None and abs(hv - rv) > max(RATE_TOL * max(abs(hv), abs(rv)), abs_tol):
                self.bad(where, f"{f} haat={hv!r} reference={rv!r} (rel {abs(hv - rv) / max(abs(rv), 1e-300):.3g})")
        # The ratio of medians: present exactly when the text median is above 0; it is the
        # ratio of the row's own medians, and within the sketches' error of the exact ratio.
        self.checked += 1
        hm = num(h.get("median_ratio"))
        if (hm is not None) != r["_median_ratio_present"]:
            self.bad(where, f"median_ratio haat={'absent' if hm is None else hm}, but the text median is "
                            f"{r.get('text_median_likes')} (present exactly when it is above 0)")
        elif hm is not None:
            own = num(h.get("median_likes")) / num(h.get("text_median_likes"))
            exact = r["median_likes"] / r["text_median_likes"]
            if abs(hm - own) > 1e-12 * own:
                self.bad(where, f"median_ratio {hm!r} is not median_likes / text_median_likes = {own!r}")
            if abs(hm / exact - 1) > (1.01 / 0.99 - 1) * (1 + 1e-9):
                self.bad(where, f"median_ratio {hm!r} is not within the sketches' 2.02 % of the exact {exact!r}")
        # Each interval holds its ratio.
        for base in ("median_ratio", "geomean_ratio"):
            self.checked += 1
            v, lo, hi = (num(h.get(base + s)) for s in ("", "_low", "_high"))
            if v is None:
                if lo is not None or hi is not None:
                    self.bad(where, f"{base} is absent but its interval is [{lo}, {hi}]")
                continue
            if lo is None or hi is None:
                self.bad(where, f"{base}={v!r} has no interval (low={lo}, high={hi})")
            elif not lo <= v <= hi:
                self.bad(where, f"{base}={v!r} lies outside its bootstrap interval [{lo!r}, {hi!r}]")
        # The verdict reads the interval of the ratio of medians (of geometric means when the
        # text median is 0): above 1 throughout -> more, below 1 throughout -> fewer, else cannot say.
        self.checked += 1
        base = "median_ratio" if hm is not None else "geomean_ratio"
        lo, hi = num(h.get(base + "_low")), num(h.get(base + "_high"))
        if lo is None or hi is None:
            self.bad(where, f"no {base} interval to read a verdict from; verdict {verdict!r}")
            return
        want = "more likes:" if lo > 1 else "fewer likes:" if hi < 1 else "cannot say:"
        if not verdict.startswith(want):
            self.bad(where, f"verdict {verdict!r} but the {base} interval is [{lo!r}, {hi!r}]: expected '{want} …'")
            return
        # Its numbers are the row's own, to two decimals, in the docs' wording (of medians only:
        # the docs give no wording for the geometric-mean case).
        if base != "median_ratio":
            return
        if want == "cannot say:":
            m = re.fullmatch(r"cannot say: the 95 % CI (\S+)\u2013(\S+) of median likes includes no difference; "
                             r"these posts would show a lift of \u00d7(\S+) or more", verdict)
            pairs = [("median_ratio_low", lo), ("median_ratio_high", hi), ("detectable_ratio", num(h.get("detectable_ratio")))]
        else:
            m = re.fullmatch(r"(?:more|fewer) likes: median likes \u00d7(\S+) text's \(95 % CI (\S+)\u2013(\S+)\)", verdict)
            pairs = [("median_ratio", hm), ("median_ratio_low", lo), ("median_ratio_high", hi)]
        self.checked += 1
        if not m:
            if r.get("_se") != 0:
                self.note(where, f"verdict {verdict!r} is not worded as docs/reports.md's examples")
            return
        # Each number must be the value rounded at its last written digit (Haat writes two
        # decimals, three significant digits from 10 on: "0.35–16.4"; the docs do not say).
        for text, (f, v) in zip(m.groups(), pairs):
            try:
                shown = float(text)
            except ValueError:
                shown = None
            places = len(text.split(".")[1]) if "." in text else 0
            if v is None or shown is None or not (abs(shown - v) <= 0.5 * 10 ** -places + 1e-9 or
                                                  (math.isinf(v) and text in ("\u221e", "inf", "Infinity"))):
                self.bad(where, f"verdict {verdict!r} shows {text} for {f} = {v!r}")

    # -------------------------------------------------------------- clv

    def clv(self, h, r):
        self.string("clv", "unit", h, r)
        self.rate("clv", "horizon", h, r)
        row_spec = {"counts": ["customers", "repeat_customers", "orders"], "money": ["revenue"],
                    "rates": ["historic_clv"]}
        rkey = ("platform", "account", "currency", "channel")
        self.keyed("clv.rows", rkey, h.get("rows", []), r.get("rows", []), row_spec)
        fkey = ("platform", "account", "currency")
        fit_spec = {"counts": ["customers", "repeat_customers"], "strings": ["observed_until"]}
        self.keyed("clv.fits", fkey, h.get("fits", []), r.get("fits", []), fit_spec)
        hfits = {tuple(x.get(k, "") for k in fkey): x for x in h.get("fits", [])}
        hrows = {tuple(x.get(k, "") for k in rkey): x for x in h.get("rows", [])}
        for rf in r.get("fits", []):
            k = tuple(rf.get(f, "") for f in fkey)
            hf = hfits.get(k)
            if hf is None:
                continue
            where = f"clv.fits {list(k)}"
            rows = [(hrows.get(tuple(rr.get(f, "") for f in rkey)), rr) for rr in r.get("rows", [])
                    if tuple(rr.get(f, "") for f in fkey) == k]
            if not rf.get("_fitted"):
                self.string(where, "note", hf, rf)
                present = [f for f in CLV_PARAMS if f in hf]
                present += [f"{f} of {hr.get('channel', '')}" for hr, _ in rows if hr
                            for f in ("predicted_purchases", "predicted_spend", "predicted_clv") if f in hr]
                if present:
                    self.bad(where, f"too few customers to fit, yet Haat gives {present[:6]}")
                continue
            self.clv_fit(where, hf, rf, rows)

    def clv_fit(self, where, hf, rf, rows):
        lt = rf.get("_lifetimes")
        if lt is None:
            self.note(where, rf.get("_lifetimes_missing", "no lifetimes fit: the parameters are not checked"))
            lt = {"bgnbd": None, "gammagamma": None, "gg_customers": rf["_gg_customers"]}
        if rf.get("_summary_differs"):
            self.note(where, "reference self-check: " + rf["_summary_differs"])
        summ = rf["_summary"]
        n = len(summ["x"])
        bg_names = ("r", "alpha", "a", "b")
        gg_names = ("p", "q", "gamma")
        hb = [num(hf.get(f)) for f in bg_names]
        hg = [num(hf.get(f)) for f in gg_names]
        # BG/NBD.
        self.checked += 1
        if None in hb:
            self.bad(where, f"BG/NBD not fitted ({dict(zip(bg_names, hb))}) for {n} customers, "
                            f"{rf['repeat_customers']} repeat; note {hf.get('note', '')!r}")
        else:
            ll_h = bgnbd_ll(hb, summ)
            stated = num(hf.get("bgnbd_log_likelihood"))
            self.checked += 1
            if stated is None or abs(stated - ll_h) > 1e-6 * max(1.0, abs(ll_h)):
                self.bad(where, f"bgnbd_log_likelihood {stated!r} is not the log-likelihood at Haat's own "
                                f"parameters, {ll_h!r} (docs/reports.md's formula)")
            if lt["bgnbd"] is not None:
                lb = [lt["bgnbd"][f] for f in bg_names]
                self.fit_params(where, "BG/NBD", bg_names, hb, lb, ll_h, bgnbd_ll(lb, summ), lt["bgnbd"])
        # Gamma-Gamma.
        gg = lt["gammagamma"]
        self.checked += 1
        if lt["gg_customers"] < 10:
            if any(v is not None for v in hg):
                self.bad(where, f"Gamma-Gamma fitted on {lt['gg_customers']} repeat customers with positive "
                                f"spend; the docs need 10")
        elif None in hg:
            self.bad(where, f"Gamma-Gamma not fitted ({dict(zip(gg_names, hg))}) with {lt['gg_customers']} repeat "
                            f"customers spending > 0; note {hf.get('note', '')!r}")
        else:
            ll_h = gg_ll(hg, summ)
            stated = num(hf.get("gamma_gamma_log_likelihood"))
            self.checked += 1
            if stated is None or abs(stated - ll_h) > 1e-6 * max(1.0, abs(ll_h)):
                self.bad(where, f"gamma_gamma_log_likelihood {stated!r} is not the log-likelihood at Haat's own "
                                f"parameters, {ll_h!r}")
            if gg is not None:
                lg = [gg["p"], gg["q"], gg["v"]]
                self.fit_params(where, "Gamma-Gamma", gg_names, hg, lg, ll_h, gg_ll(lg, summ), gg)
        # The note: the proto says "empty when both are" fitted and used; Haat writes how many
        # repeat customers Gamma-Gamma left out (m_x <= 0), which the docs do not name: its
        # count is checked, the wording only reported.
        note = hf.get("note", "")
        left_out = rf["repeat_customers"] - lt["gg_customers"]
        m = re.fullmatch(r"(\d+) repeat customers with no positive spend left out of Gamma-Gamma", note)
        self.checked += 1
        if m and int(m.group(1)) != left_out:
            self.bad(where, f"note {note!r}, but {left_out} repeat customers have m_x <= 0")
        elif note and not m:
            self.note(where, f"note {note!r} on a fitted store (proto: empty when both models are fitted and used)")
        elif not note and left_out and lt["gg_customers"] >= 10:
            self.note(where, f"no note, though {left_out} repeat customers with m_x <= 0 are left out of Gamma-Gamma")
        # Predictions: at Haat's own parameters, by docs/reports.md's formulas, per row.
        if None in hb:
            return
        gg_ok = None not in hg and hg[1] > 1
        per = {}
        for i in range(n):
            x, t_x, T, m = summ["x"][i], summ["t_x"][i], summ["T"][i], summ["m"][i]
            purchases = bgnbd_expected(hb, x, t_x, T, CLV_HORIZON)
            spend = None
            if gg_ok:
                p, q, g = hg
                spend = p * (g + x * m) / (p * x + q - 1) if x > 0 else p * g / (q - 1)
            for c in (summ["channel"][i], "all"):
                acc = per.setdefault(c, [0, [], [], []])
                acc[0] += 1
                acc[1].append(purchases)
                if spend is not None:
                    acc[2].append(spend)
                    acc[3].append(purchases * spend)
        for hr, rr in rows:
            if hr is None:
                continue
            w = f"clv.rows {[rr['platform'], rr['account'], rr['currency'], rr['channel']]}"
            acc = per[rr["channel"]]
            want = {"predicted_purchases": math.fsum(acc[1]) / acc[0]}
            if gg_ok:
                want["predicted_spend"] = math.fsum(acc[2]) / acc[0]
                want["predicted_clv"] = math.fsum(acc[3]) / acc[0]
            for f in ("predicted_purchases", "predicted_spend", "predicted_clv"):
                self.rate(w, f, hr, want, tol=CLV_PREDICTION_TOL)
        # The reference checks itself: these formulas at lifetimes' parameters give lifetimes'
        # own predictions (conditional_expected_number_of_purchases_up_to_time, its scipy
        # hyp2f1; conditional_expected_average_profit).
        lb = lt["bgnbd"]
        if lb is not None and lb.get("converged", True):
            lbp = [lb[f] for f in bg_names]
            per_l = {}
            for i in range(n):
                x, m = summ["x"][i], summ["m"][i]
                pu = bgnbd_expected(lbp, x, summ["t_x"][i], summ["T"][i], CLV_HORIZON)
                for c in (summ["channel"][i], "all"):
                    acc = per_l.setdefault(c, [0, []])
                    acc[0] += 1
                    acc[1].append(pu)
            for _, rr in rows:
                lt_row = rr.get("_lifetimes") or {}
                v = lt_row.get("predicted_purchases")
                mine = math.fsum(per_l[rr["channel"]][1]) / per_l[rr["channel"]][0]
                if v is not None and math.isfinite(v) and abs(mine / v - 1) > CLV_PREDICTION_TOL:
                    self.note(where, f"reference self-check: equation (10) at lifetimes' parameters gives "
                                     f"{mine!r} for {rr['channel']}, lifetimes {v!r}")

    def fit_params(self, where, model, names, hv, lv, ll_h, ll_l, fit):
        """Parameters within 1 % of lifetimes', both evaluated by the same log-likelihood:
        within 1e-3 of each other. When lifetimes' minimizer reports no convergence (the
        parameters run off along a ridge), its last iterate's log-likelihood only bounds the
        maximum from below: Haat's must not be lower, and the parameters are not compared."""
        self.checked += len(names) + 1
        diffs = {f: abs(h / l - 1) for f, h, l in zip(names, hv, lv)}
        off = {f: d for f, d in diffs.items() if d > CLV_PARAM_TOL}
        d_ll = ll_h - ll_l
        detail = (f"Haat {dict(zip(names, [float(f'{v:.6g}') for v in hv]))}, lifetimes "
                  f"{dict(zip(names, [float(f'{v:.6g}') for v in lv]))}; log-likelihood Haat {ll_h:.6f}, "
                  f"lifetimes {ll_l:.6f} (Haat - lifetimes = {d_ll:+.3g})")
        if not fit.get("converged", True):
            # Its last iterate's gradient is not small either: only a lower bound.
            if d_ll < -CLV_LL_TOL:
                self.bad(where, f"{model}: Haat's maximum is lower than where lifetimes' unconverged minimizer "
                                f"stopped: {detail}")
            else:
                self.note(where, f"{model}: lifetimes does not converge ({fit.get('error', '')[:80]}…); "
                                 f"parameters not compared, Haat's log-likelihood is at least lifetimes': {detail}")
            return
        if d_ll < -CLV_LL_TOL:
            self.bad(where, f"{model}: Haat's maximum is lower than lifetimes' by more than {CLV_LL_TOL}: {detail}")
            return
        if d_ll > CLV_LL_TOL:
            # Haat found a higher likelihood (evaluated here, not as Haat states it): lifetimes'
            # minimizer stopped short, and its parameters say nothing about Haat's.
            self.note(where, f"{model}: lifetimes stops short of Haat's maximum (by more than {CLV_LL_TOL}); "
                             f"parameters not compared: {detail}")
            return
        # A parameter the data do not pin down (lifetimes' standard error of its logarithm
        # above 1) may drift along the flat ridge at the same likelihood: reported, not failed.
        se = fit.get("log_se") or {}
        lt_names = {"gamma": "v"}
        loose = {f for f in off if (se.get(lt_names.get(f, f)) is None or se[lt_names.get(f, f)] > 1)}
        if off and loose == set(off) and abs(d_ll) <= CLV_LL_TOL:
            self.note(where, f"{model} parameters {sorted(off)} differ by "
                             f"{ {f: f'{d:.3%}' for f, d in off.items()} } at the same log-likelihood; lifetimes' "
                             f"standard errors of their logarithms {[se.get(lt_names.get(f, f)) for f in sorted(off)]} "
                             f"say the data do not identify them: {detail}")
        elif off:
            self.bad(where, f"{model} parameters differ by more than 1 %: "
                            f"{ {f: f'{d:.3%}' for f, d in off.items()} }; {detail}")

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
    ap.add_argument("--reports", default="engagement,best_time,attribution,reviews,ads,audience,response_time,"
                                          "media_lift,frequency,cohorts,clv")
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
        elif name == "media_lift":
            c.media_lift(haat[name], ref[name])
        elif name == "clv":
            c.clv(haat[name], ref[name])
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
