#!/usr/bin/env python3
"""DuckDB's side of `make bench-analysis` (haat-bench analysis): the engagement, best_time
and attribution figures of docs/reports.md over the generated canonical CSVs, timed.

Usage: bench-duckdb.py --posts posts.csv --orders 'orders-*.csv' [--threads 2] [--repeats 2]
Prints JSON: {"seconds": best wall time of the three queries, "posts": rows, "orders": rows,
"version": duckdb's}. Written from docs/reports.md and docs/formats.md; the generated files
have no bad rows, so no validity rules are needed here (scripts/analysis/reference.py
applies them).
"""

import argparse
import json
import time

import duckdb

POSTS = """
CREATE OR REPLACE TEMP VIEW posts AS
SELECT platform, account, media_type, created_at,
       coalesce(likes, 0) + coalesce(comments, 0) + coalesce(shares, 0) + coalesce(saves, 0) AS engagements,
       likes, comments, shares, saves, reach, impressions, clicks, video_views
FROM read_csv({path}, header = true, columns = {{
  'platform': 'VARCHAR', 'account': 'VARCHAR', 'id': 'VARCHAR', 'created_at': 'VARCHAR',
  'media_type': 'VARCHAR', 'likes': 'UBIGINT', 'comments': 'UBIGINT', 'shares': 'UBIGINT',
  'saves': 'UBIGINT', 'reach': 'UBIGINT', 'impressions': 'UBIGINT', 'video_views': 'UBIGINT',
  'clicks': 'UBIGINT', 'caption': 'VARCHAR'}})
"""

ENGAGEMENT = """
SELECT platform, account, media_type, count(*) AS posts, sum(likes), sum(comments), sum(shares),
       sum(saves), sum(reach), sum(impressions), sum(clicks), sum(video_views), sum(engagements),
       sum(engagements) FILTER (WHERE reach IS NOT NULL) / sum(reach) AS rate_reach,
       sum(engagements) FILTER (WHERE impressions IS NOT NULL) / sum(impressions) AS rate_impressions,
       median(engagements / reach) FILTER (WHERE reach > 0),
       median(engagements / impressions) FILTER (WHERE impressions > 0)
FROM posts GROUP BY ALL
"""

# Hour of the week in each post's written offset (the sources name no time zone): the
# local wall time is the first 19 characters of created_at.
BEST_TIME = """
WITH local AS (
  SELECT platform, account, engagements, reach,
         strptime(substr(created_at, 1, 19), '%Y-%m-%dT%H:%M:%S') AS local_time FROM posts)
SELECT platform, account, (isodow(local_time) - 1) * 24 + hour(local_time) AS hour, count(*) AS posts,
       sum(engagements), median(engagements / reach) FILTER (WHERE reach > 0), median(engagements)
FROM local GROUP BY ALL
"""

# The channel of each order (docs/reports.md "Channels"): UTM source, else a click id, else
# the referrer's host, else direct.
ATTRIBUTION = """
WITH orders AS (
  SELECT currency, total, landing_site, referring_site,
         lower(url_decode(regexp_extract(landing_site, '[?&]utm_source=([^&#]*)', 1))) AS utm
  FROM read_csv(?, header = true, columns = {
    'id': 'VARCHAR', 'created_at': 'VARCHAR', 'customer': 'VARCHAR', 'total': 'DECIMAL(18,2)',
    'currency': 'VARCHAR', 'landing_site': 'VARCHAR', 'referring_site': 'VARCHAR'})),
channels AS (
  SELECT currency, total, CASE
    WHEN utm IN ('facebook', 'fb') THEN 'facebook'
    WHEN utm IN ('instagram', 'ig') THEN 'instagram'
    WHEN utm <> '' THEN utm
    WHEN regexp_matches(landing_site, '[?&]fbclid=') THEN 'facebook'
    WHEN regexp_matches(landing_site, '[?&]gclid=') THEN 'google'
    WHEN referring_site LIKE '%facebook.com%' THEN 'facebook'
    WHEN referring_site LIKE '%instagram.com%' THEN 'instagram'
    WHEN referring_site LIKE '%google.%' THEN 'google'
    WHEN referring_site LIKE '%tiktok.com%' THEN 'tiktok'
    WHEN coalesce(referring_site, '') <> '' THEN 'referral'
    ELSE 'direct' END AS channel
  FROM orders)
SELECT channel, currency, count(*) AS orders, sum(total) AS revenue, avg(total) AS aov
FROM channels GROUP BY ALL
"""


def quote(text):
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", required=True)
    parser.add_argument("--orders", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    best = float("inf")
    counts = (0, 0)
    for _ in range(args.repeats):
        con = duckdb.connect()
        con.execute(f"SET threads = {args.threads}")
        started = time.perf_counter()
        con.execute(POSTS.format(path=quote(args.posts)))
        # The posts are read once for both post reports, as a Haat task reads its file once
        # for all of its reports.
        con.execute("CREATE TEMP TABLE p AS SELECT * FROM posts")
        con.execute("CREATE OR REPLACE TEMP VIEW posts AS SELECT * FROM p")
        engagement = con.execute(ENGAGEMENT).fetchall()
        best_time = con.execute(BEST_TIME).fetchall()
        attribution = con.execute(ATTRIBUTION, [args.orders]).fetchall()
        elapsed = time.perf_counter() - started
        best = min(best, elapsed)
        counts = (sum(row[3] for row in engagement), sum(row[2] for row in attribution))
        assert best_time
        con.close()
    print(json.dumps({"seconds": best, "posts": counts[0], "orders": counts[1], "version": duckdb.__version__}))


if __name__ == "__main__":
    main()
