#!/usr/bin/env bash
# Fetch the CDNOW reference data sets that ship inside the `lifetimes` wheel (PyPI),
# so tests can use them without the data being committed.
#
# Usage: scripts/analysis/cdnow.sh [OUT_DIR]
#   OUT_DIR defaults to $HAAT_CDNOW_DIR, else <repo>/.build/cdnow (git-ignored).
#
# Writes into OUT_DIR (flat, names as in the wheel's lifetimes/datasets/):
#   CDNOW_master.txt        all 23,570 customers of the 1997Q1 cohort, 69,659 transactions
#                           (header: customer_id date number_of_cds dollar_value; whitespace separated)
#   CDNOW_sample.txt        the 1/10 sample: 2,357 customers, 6,919 transactions, no header:
#                           master_id sample_id(1..2357) yyyymmdd number_of_cds dollar_value
#   cdnow_customers_summary.csv                   ID,frequency,recency,T   (2,357 rows; weeks)
#   cdnow_customers_summary_with_transactions.csv ID,x,t_x,T,zbar          (2,357 rows; CRLF)
#
# Only PyPI is contacted (pip download), only when a file is missing or wrong; each file is
# checked against the sha256 it has in lifetimes 0.11.3, so a second run is instant.
# Prints the absolute OUT_DIR as the only line on stdout (progress goes to stderr):
#   dir=$(scripts/analysis/cdnow.sh)
set -euo pipefail

LIFETIMES_VERSION=0.11.3
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${1:-${HAAT_CDNOW_DIR:-$REPO/.build/cdnow}}
PY=${PYTHON:-python3}

FILES=(
  "eff6889ed364c5199d6eacbbeb7a6d559971df4406ac876f322c373f00a072ef  CDNOW_master.txt"
  "6fae10155c0b0ba363c2c386e30f77990d22328220efd862a5edd1443420d94a  CDNOW_sample.txt"
  "09d92ca80daaabe8be0f997d4c539f9c9606106baa5b199081fe01cbce5fa9f6  cdnow_customers_summary.csv"
  "7ddd11b55be3227edfc1d58675154e96971b0de3ad37ddd9280d1dba154b8b2f  cdnow_customers_summary_with_transactions.csv"
)

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

all_present() {
  local line
  for line in "${FILES[@]}"; do
    [ -f "$OUT/${line#*  }" ] || return 1
  done
  (cd "$OUT" && printf '%s\n' "${FILES[@]}" | sha256sum --check --status --strict -)
}

if all_present; then
  echo "cdnow: already present in $OUT" >&2
  echo "$OUT"
  exit 0
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "cdnow: downloading lifetimes==$LIFETIMES_VERSION wheel from PyPI" >&2
"$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  "lifetimes==$LIFETIMES_VERSION" -d "$TMP" >&2
WHEEL=$(ls "$TMP"/*.whl)

# Extract only the data files (python's zipfile: no dependency on unzip), into a staging
# directory first, then move into place, so an interrupted run never leaves a partial file.
mkdir -p "$TMP/stage"
"$PY" - "$WHEEL" "$TMP/stage" "${FILES[@]#*  }" <<'EOF'
import sys, zipfile
wheel, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for n in names:
        with z.open("lifetimes/datasets/" + n) as src, open(dest + "/" + n, "wb") as dst:
            dst.write(src.read())
EOF
(cd "$TMP/stage" && printf '%s\n' "${FILES[@]}" | sha256sum --check --strict --quiet -) >&2 || {
  echo "cdnow: checksum mismatch in the downloaded wheel" >&2
  exit 1
}
for line in "${FILES[@]}"; do
  mv -f "$TMP/stage/${line#*  }" "$OUT/"
done

echo "cdnow: wrote ${#FILES[@]} files to $OUT" >&2
echo "$OUT"
