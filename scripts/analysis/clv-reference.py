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

  # Many stores at once (scripts/analysis/reference.py): a CSV with header
  # store,customer,date,amount and a JSON {store: observation end YYYY-MM-DD}; unit days with
  # multiplier 7 (weeks), Gamma-Gamma over the repeat customers with a positive mean repeat
  # amount, tighter tolerance, and each customer's 52-week predictions:
  ... --stores tx.csv --ends ends.json [--horizon 52] [--min-gg 10]
  # or --stores - : started ahead, reads {"stores": CSV, "ends": JSON} as one line from stdin

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


# BFGS often stops with "precision loss" at the optimum itself: where the gradient of the
# mean negative log-likelihood (in log-parameters) is this small, its last iterate is the fit.
FLAT_GRADIENT = 1e-5


def lifetimes_fit(model, args, size, tol):
    """lifetimes' own fit (fitters/__init__.py `_fit`: BFGS with autograd's gradient on
    `model._negative_log_likelihood`, the mean negative log-likelihood over log-parameters,
    from log-parameters 0.1, no penalizer), called directly so that a stop for "precision
    loss" keeps its last iterate instead of raising: (parameters, converged, gradient, note,
    standard errors of the log-parameters from the Hessian). Not converged, the last
    iterate's log-likelihood still bounds the maximum from below (parameters running off
    along a ridge: Gamma-Gamma's q and gamma to infinity when spend does not vary between
    customers)."""
    from autograd import hessian, value_and_grad
    from scipy.optimize import minimize
    out = minimize(value_and_grad(model._negative_log_likelihood), jac=True, method=None, tol=tol,
                   x0=0.1 * np.ones(size), args=args)
    grad = float(np.max(np.abs(out.jac)))
    converged = bool(out.success) or grad < FLAT_GRADIENT
    se = [None] * size
    try:
        h = hessian(model._negative_log_likelihood)(out.x, *args)
        n = len(args[0])
        var = np.diag(np.linalg.inv(h)) / n
        se = [float(math.sqrt(v)) if v > 0 and math.isfinite(v) else None for v in var]
    except Exception:  # noqa: BLE001 - a Hessian that does not evaluate or invert says nothing more
        pass
    note = "" if out.success else f"BFGS: {out.message} (gradient {grad:.2g})"
    return np.exp(out.x), converged, grad, note, se


def fit_stores(path, ends_path, horizon, min_gg, tol):
    """{store: {customers, repeat_customers, bgnbd, gammagamma (or None), gg_customers,
    summary: each customer's x, t_x, T, m_x, predictions: {customer: [purchases over the
    horizon, spend per purchase or None]}}}. Times in weeks (days / 7), purchase days as
    lifetimes' summary makes them (same-day orders are one purchase)."""
    with open(ends_path) as f:
        ends = json.load(f)
    tx = pd.read_csv(path, dtype={"store": str, "customer": str, "date": str, "amount": float},
                     keep_default_na=False)
    tx["date"] = pd.to_datetime(tx["date"], format="%Y-%m-%d")
    out = {}
    for store, group in tx.groupby("store", sort=True):
        s = summarise(group[["customer", "date", "amount"]], ends[store], "D", 7)
        x = s["frequency"].to_numpy(dtype=float)
        t_x = s["recency"].to_numpy(dtype=float)
        T = s["T"].to_numpy(dtype=float)
        m = s["monetary_value"].to_numpy(dtype=float)
        n = len(x)
        res = {"customers": n, "repeat_customers": int((x > 0).sum()), "gammagamma": None,
               "summary": {"customer": [str(c) for c in s.index], "x": x.tolist(), "t_x": t_x.tolist(),
                           "T": T.tolist(), "m": m.tolist()}}
        # BG/NBD, on time scaled so that max T is 1 as BetaGeoFitter.fit does, alpha scaled back.
        scale = 1.0 / T.max()
        ones = np.ones(n, dtype=int)
        (r, alpha, a, b), converged, grad, note, se = lifetimes_fit(
            BetaGeoFitter, (x.astype(int), t_x * scale, T * scale, ones, 0.0), 4, tol)
        alpha /= scale
        nll_mean = BetaGeoFitter._negative_log_likelihood(np.log([r, alpha, a, b]), x.astype(int), t_x, T, ones, 0.0)
        res["bgnbd"] = {"r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b),
                        "ll": float(-nll_mean * n), "converged": converged, "gradient": grad,
                        "log_se": dict(zip(("r", "alpha", "a", "b"), se))}
        if note:
            res["bgnbd"]["error" if not converged else "bfgs"] = note
        purchases = [None] * n
        if converged:
            bg = BetaGeoFitter(penalizer_coef=0.0)
            bg.params_ = pd.Series({"r": r, "alpha": alpha, "a": a, "b": b})
            with np.errstate(all="ignore"):
                purchases = [float(v) for v in bg.conditional_expected_number_of_purchases_up_to_time(
                    horizon, x, t_x, T)]
        # Gamma-Gamma over the repeat customers with a positive mean repeat amount.
        keep = (x > 0) & (m > 0)
        k = int(keep.sum())
        res["gg_customers"] = k
        spend = [None] * n
        if k >= min_gg:
            (p, q, v), converged, grad, note, se = lifetimes_fit(
                GammaGammaFitter, (x[keep], m[keep], np.ones(k, dtype=int), 0.0), 3, tol)
            ll = -GammaGammaFitter._negative_log_likelihood(
                np.log([p, q, v]), x[keep], m[keep], np.ones(k, dtype=int), 0.0) * k
            res["gammagamma"] = {"p": float(p), "q": float(q), "v": float(v), "ll": float(ll),
                                 "converged": converged, "gradient": grad, "log_se": dict(zip(("p", "q", "v"), se))}
            if note:
                res["gammagamma"]["error" if not converged else "bfgs"] = note
            if converged and q > 1:
                gg = GammaGammaFitter(penalizer_coef=0.0)
                gg.params_ = pd.Series({"p": p, "q": q, "v": v})
                spend = [float(e) for e in gg.conditional_expected_average_profit(x, m)]
        res["predictions"] = {c: [pu, sp] for c, pu, sp in zip(s.index, purchases, spend)}
        out[store] = res
    return out


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
    src.add_argument("--stores", help="CSV with header store,customer,date,amount (with --ends); '-': "
                                      "read {\"stores\": CSV, \"ends\": JSON} as one line from stdin")
    ap.add_argument("--ends", help="with --stores: JSON {store: observation end YYYY-MM-DD}")
    ap.add_argument("--horizon", type=float, default=52.0, help="with --stores: weeks to predict")
    ap.add_argument("--min-gg", type=int, default=10,
                    help="with --stores: fit Gamma-Gamma only with this many repeat customers spending > 0")
    ap.add_argument("--tol", type=float, default=1e-10,
                    help="with --stores: the minimizer's tolerance (lifetimes' default is 1e-7)")
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
    if args.stores:
        stores, ends = args.stores, args.ends
        if stores == "-":
            # Started ahead (its imports take seconds): the paths come as one JSON line on stdin,
            # {"stores": CSV, "ends": JSON}, or {} for nothing to fit.
            job = json.loads(sys.stdin.readline() or "{}")
            stores, ends = job.get("stores"), job.get("ends")
        out["stores"] = fit_stores(stores, ends, args.horizon, args.min_gg, args.tol) if stores else {}
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
        return
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
