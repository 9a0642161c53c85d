#!/usr/bin/env python3
"""Reference BG/NBD + Gamma-Gamma fits from Python's `lifetimes`, to check Haat's Swift CLV models.

Needs lifetimes (not the standard library). Set-up, once (versions that were checked):
  python3 -m venv .build/clv-venv
  .build/clv-venv/bin/pip install lifetimes==0.11.3 'pandas<4' scipy numpy autograd
  # checked with: lifetimes 0.11.3, numpy 2.4.6, pandas 3.1.1, scipy 1.17.1, autograd 1.9.1,
  # dill 0.4.1, Python 3.11.7. pandas 4 will drop the option lifetimes.utils sets on import.

Usage:
  # Transactions CSV with header customer,date,amount (date YYYY-MM-DD):
  .build/clv-venv/bin/python scripts/analysis/clv-reference.py \
      --transactions tx.csv --end 1997-09-30 --unit W [--multiplier 1] [--summary-out s.csv]

  # The CDNOW summary files shipped in the lifetimes wheel (see scripts/analysis/cdnow.sh):
  .build/clv-venv/bin/python scripts/analysis/clv-reference.py --cdnow "$(scripts/analysis/cdnow.sh)"

  # Also write CDNOW_sample.txt as a customer,date,amount CSV (all 18 months). Feeding it back with
  # --end 1997-09-30 --unit D --multiplier 7 reproduces cdnow_customers_summary.csv (to its 2 dp):
  ... --cdnow DIR --write-transactions cdnow_tx.csv

Output (stdout), JSON:
  {"bgnbd": {"r","alpha","a","b","ll"}, "gammagamma": {"p","q","v","ll"},
   "customers", "repeat_customers", ...}
`ll` is the plain total log-likelihood sum_i LL_i at the fitted parameters, with recency/T in the
units given (weeks for CDNOW) and lifetimes' own per-customer formulas, penalizer 0. It is NOT
lifetimes' internal objective `_negative_log_likelihood_`, which is the *mean* negative LL on time
rescaled so that max(T) == 1; `bgnbd.ll_lifetimes_objective` reports that one too, for the record:
  ll == -objective * n - sum(x) * ln(max T).
Gamma-Gamma is fitted on repeat customers only (frequency > 0), as the lifetimes docs do.
"""

import argparse
import json
import math
import os
import sys
import warnings

warnings.filterwarnings("ignore")

try:
    import numpy as np
    import pandas as pd
    import lifetimes
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data
except ImportError as e:  # pragma: no cover
    sys.exit(f"clv-reference: {e}. Run with the venv described at the top of this file "
             f"(.build/clv-venv/bin/python).")


def read_transactions(path):
    df = pd.read_csv(path, dtype={"customer": str, "date": str, "amount": float})
    missing = {"customer", "date", "amount"} - set(df.columns)
    if missing:
        sys.exit(f"clv-reference: {path} lacks column(s) {sorted(missing)}")
    df["date"] = pd.to_datetime(df["date"], format="%Y-%m-%d")
    return df[["customer", "date", "amount"]]


def summarise(tx, end, unit, multiplier):
    """lifetimes' own summary: frequency, recency, T, monetary_value per customer."""
    return summary_data_from_transaction_data(
        tx, "customer", "date", monetary_value_col="amount",
        observation_period_end=end, freq=unit, freq_multiplier=multiplier)


def fit_bgnbd(x, tx, T):
    x = np.asarray(x, dtype=float)
    tx = np.asarray(tx, dtype=float)
    T = np.asarray(T, dtype=float)
    bg = BetaGeoFitter(penalizer_coef=0.0).fit(x, tx, T)
    r, alpha, a, b = (float(bg.params_[k]) for k in ("r", "alpha", "a", "b"))
    # Total LL in the caller's time units, by lifetimes' own formula (mean NLL * n).
    n = len(x)
    nll_mean = BetaGeoFitter._negative_log_likelihood(
        np.log([r, alpha, a, b]), x.astype(int), tx, T, np.ones(n, dtype=int), 0.0)
    return {
        "r": r, "alpha": alpha, "a": a, "b": b,
        "ll": float(-nll_mean * n),
        "ll_lifetimes_objective": float(bg._negative_log_likelihood_),
        "time_scale": float(1.0 / T.max()),
        "sum_x": float(x.sum()),
    }


def fit_gammagamma(x, m):
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    keep = x > 0
    x, m = x[keep], m[keep]
    if np.any(m <= 0):
        sys.exit("clv-reference: a repeat customer has mean repeat amount <= 0; "
                 "lifetimes' GammaGammaFitter refuses that")
    gg = GammaGammaFitter(penalizer_coef=0.0).fit(x, m)
    p, q, v = (float(gg.params_[k]) for k in ("p", "q", "v"))
    return {
        "p": p, "q": q, "v": v,
        "ll": float(-gg._negative_log_likelihood_ * len(x)),  # no time scaling here
        "population_mean": v * p / (q - 1) if q > 1 else None,
    }


def cdnow_sample_transactions(d):
    s = pd.read_csv(os.path.join(d, "CDNOW_sample.txt"), sep=r"\s+", header=None,
                    names=["master_id", "customer", "date", "cds", "amount"],
                    dtype={"customer": str, "date": str})
    s["date"] = pd.to_datetime(s["date"], format="%Y%m%d")
    return s[["customer", "date", "amount"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--transactions", help="CSV with header customer,date,amount")
    src.add_argument("--cdnow", metavar="DIR", help="directory from scripts/analysis/cdnow.sh")
    ap.add_argument("--end", help="observation period end, YYYY-MM-DD (default: last date)")
    ap.add_argument("--unit", choices=["W", "D"], default="W",
                    help="time unit for recency/T (pandas period: W = weeks Mon..Sun)")
    ap.add_argument("--multiplier", type=int, default=1,
                    help="lifetimes freq_multiplier: recency/T are divided by it "
                         "(D with 7 = exact weeks from daily dates, as in CDNOW)")
    ap.add_argument("--summary-out", help="also write lifetimes' per-customer summary CSV")
    ap.add_argument("--write-transactions", metavar="CSV",
                    help="with --cdnow: write CDNOW_sample.txt as customer,date,amount")
    args = ap.parse_args()

    out = {"lifetimes_version": lifetimes.__version__}
    if args.cdnow:
        d = args.cdnow
        summ = pd.read_csv(os.path.join(d, "cdnow_customers_summary.csv"))
        wt = pd.read_csv(os.path.join(d, "cdnow_customers_summary_with_transactions.csv"))
        out["source"] = "cdnow summary files (BG/NBD: cdnow_customers_summary.csv; "\
                        "Gamma-Gamma: cdnow_customers_summary_with_transactions.csv)"
        out["bgnbd"] = fit_bgnbd(summ["frequency"], summ["recency"], summ["T"])
        out["gammagamma"] = fit_gammagamma(wt["x"], wt["zbar"])
        out["customers"] = int(len(summ))
        out["repeat_customers"] = int((wt["x"] > 0).sum())
        if args.write_transactions:
            t = cdnow_sample_transactions(d)
            t["date"] = t["date"].dt.strftime("%Y-%m-%d")
            t.to_csv(args.write_transactions, index=False, float_format="%.2f")
            out["wrote_transactions"] = args.write_transactions
        if args.summary_out:
            wt.rename(columns={"ID": "customer", "x": "frequency", "t_x": "recency",
                               "zbar": "monetary_value"}).to_csv(args.summary_out, index=False)
    else:
        tx = read_transactions(args.transactions)
        end = args.end or tx["date"].max().strftime("%Y-%m-%d")
        s = summarise(tx, end, args.unit, args.multiplier)
        out["source"] = args.transactions
        out["observation_period_end"] = end
        out["unit"] = args.unit
        out["multiplier"] = args.multiplier
        out["bgnbd"] = fit_bgnbd(s["frequency"], s["recency"], s["T"])
        out["gammagamma"] = fit_gammagamma(s["frequency"], s["monetary_value"])
        out["customers"] = int(len(s))
        out["repeat_customers"] = int((s["frequency"] > 0).sum())
        if args.summary_out:
            s.rename_axis("customer").to_csv(args.summary_out, float_format="%.17g")

    for k in ("bgnbd", "gammagamma"):
        for name, val in out[k].items():
            if isinstance(val, float) and not math.isfinite(val):
                out[k][name] = None
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
