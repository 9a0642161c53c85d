#!/usr/bin/env python3
"""Independent reference of Haat's report figures, in DuckDB SQL, from the docs alone.

  reference.py --data DIR [--manifest DIR/manifest.json] --out reference.json

Reads every file of the manifest (docs/formats.md: posts, orders, messages, reviews, ad
insights; CSV or NDJSON) with DuckDB, applies the docs' validity rules, and writes the
exact figures of the reports `engagement`, `best_time`, `attribution`, `reviews`, `ads`,
`audience`, `response_time`, `media_lift`, `frequency`, `cohorts` and `clv`
(docs/reports.md) under the field names of Haat's report JSON
(protos/haat/v1/analytics.proto). Quantiles are exact (the value at rank
floor(q (n - 1)) of the sorted values); distinct counts are exact. Beside them, under
`_sketch`, each row also carries what the documented sketches would answer (the DDSketch
bucket of that value; the HyperLogLog estimate of those keys): compare.py uses the exact
figures with the documented error bounds, and the sketch values only to explain.

media_lift: counts, means, exact lower medians, and the geometric-mean ratio, Welch's t, df,
p (regularized incomplete beta, here in Python) and the detectable ratio from two-pass exact
moments of ln(1 + likes); the bootstrap intervals are not reproduced (compare.py checks what
can be: each interval holds its ratio, and the verdict reads it). frequency and cohorts:
exact. clv: the historic figures exact (revenue as decimals); the stores Haat fits (50
customers, 10 repeat) are fitted again by `lifetimes` (clv-reference.py --stores, in the
venv of --clv-python, run as a subprocess while the other reports are computed) on the
same purchase days, and each customer's (x, t_x, T, m_x, first channel) goes along under
`_summary` so compare.py can evaluate both likelihoods and the predictions at Haat's own
parameters. Where the docs leave a choice, the reference takes Haat's observed one and
says so: the customers map holds customer orders only, so "the account's last order month"
(cohorts) and "the store's last order day" (clv's observed_until) leave guest orders out.

Every row is also kept in `bad_rows` (source, row, column, message) for the row errors.
"""

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from decimal import Decimal

import duckdb

U64 = 18446744073709551615
GAMMA = (1 + 0.01) / (1 - 0.01)
LN_GAMMA = math.log(GAMMA)
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

POST_TEXT = ["platform", "account", "id", "created_at", "media_type"]
POST_COUNTS = ["likes", "comments", "shares", "saves", "reach", "impressions", "video_views", "clicks",
               "followers_at_post"]
POST_CAMEL = {"created_at": "createdAt", "media_type": "mediaType", "video_views": "videoViews",
              "followers_at_post": "followersAtPost"}

# Names accepted per field, first listed wins (docs/formats.md).
ALIASES = {
    "orders": {
        "platform": ["platform"], "account": ["account"], "id": ["id"], "created_at": ["created_at"],
        "customer": ["customer"], "total": ["total"], "currency": ["currency"],
        "landing_site": ["landing_site"], "referring_site": ["referring_site"],
    },
    "reviews": {
        "created_at": ["created_at", "review_date", "date", "review creation date", "created at", "review date"],
        "rating": ["rating", "review score", "review_score", "score", "stars"],
        "id": ["id", "review_id", "review id"],
        "product": ["product", "product_id", "product id", "product_handle", "product handle", "product sku"],
        "verified": ["verified", "verified_buyer", "verified buyer"],
        "media": ["media", "media_count", "picture_urls", "pictures", "images"],
        "replied": ["replied", "reply", "store reply", "comment"],
        "status": ["status", "curated", "published"],
        "platform": ["platform"], "account": ["account", "store"],
    },
    "messages": {
        "conversation": ["conversation", "conversation_id", "thread", "thread_id"],
        "direction": ["direction"],
        "at": ["at", "created_time", "created_at", "timestamp", "sent_at"],
        "id": ["id", "message_id"],
        "platform": ["platform"], "account": ["account", "page"],
    },
    "ad_insights": {
        "platform": ["platform"], "account": ["account"], "date": ["date"], "campaign": ["campaign"],
        "ad": ["ad"], "spend": ["spend"], "impressions": ["impressions"], "clicks": ["clicks"],
        "conversions": ["conversions"], "claimed_roas": ["claimed_roas"],
    },
}
ALIASES["posts"] = {f: [f] for f in POST_TEXT + POST_COUNTS}


# ---------------------------------------------------------------- SQL helpers

MACROS = r"""
CREATE OR REPLACE MACRO tt(s) AS trim(s, ' ' || chr(9));
CREATE OR REPLACE MACRO blank(s) AS (s IS NULL OR tt(s) = '');
CREATE OR REPLACE MACRO has_ctl(s) AS coalesce(regexp_matches(s, '[\x00-\x08\x0A-\x1F\x7F]'), false);
-- A count (docs/formats.md "Counts"): NULL when valid or unknown, else the reason.
CREATE OR REPLACE MACRO count_err(v) AS CASE
  WHEN blank(v) THEN NULL
  WHEN regexp_full_match(tt(v), '-([0-9]+|[0-9]{1,3}(,[0-9]{3})+)') THEN 'negative'
  WHEN NOT regexp_full_match(tt(v), '[0-9]+|[0-9]{1,3}(,[0-9]{3})+') THEN 'not an integer'
  WHEN length(ltrim(replace(tt(v), ',', ''), '0')) > 20 THEN 'out of range'
  WHEN replace(tt(v), ',', '')::HUGEINT > 18446744073709551615 THEN 'out of range'
  ELSE NULL END;
CREATE OR REPLACE MACRO count_val(v) AS CASE
  WHEN blank(v) OR count_err(v) IS NOT NULL THEN NULL
  ELSE replace(tt(v), ',', '')::HUGEINT END;
CREATE OR REPLACE MACRO dec_ok(v) AS regexp_full_match(tt(v), '-?[0-9]+(\.[0-9]+)?');
-- RFC 3339 with an offset (posts): the parts, or NULL.
CREATE OR REPLACE MACRO rfc_parts(s) AS
  regexp_extract(s, '^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$',
                 ['y', 'mo', 'd', 'h', 'mi', 's', 'f', 'z']);
-- Loose timestamps (docs/formats.md "Loose timestamps").
CREATE OR REPLACE MACRO loose_parts(s) AS CASE
  WHEN regexp_full_match(s, '([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?([Zz]|[+-][0-9]{2}:?[0-9]{2})')
  THEN regexp_extract(s, '^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?([Zz]|[+-][0-9]{2}:?[0-9]{2})$',
                      ['y', 'mo', 'd', 'h', 'mi', 's', 'f', 'z'])
  WHEN regexp_full_match(s, '([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)? ?(UTC|GMT|Z|[+-][0-9]{2}:?[0-9]{2})?')
  THEN regexp_extract(s, '^([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)? ?(UTC|GMT|Z|[+-][0-9]{2}:?[0-9]{2})?$',
                      ['y', 'mo', 'd', 'h', 'mi', 's', 'f', 'z'])
  WHEN regexp_full_match(s, '([0-9]{4})-([0-9]{2})-([0-9]{2})')
  THEN {'y': s[1:4], 'mo': s[6:7], 'd': s[9:10], 'h': '00', 'mi': '00', 's': '00', 'f': '', 'z': 'Z'}
  ELSE NULL END;
-- The offset in seconds of a zone text (Z, UTC, GMT, empty: 0; ±HH:MM, ±HHMM).
CREATE OR REPLACE MACRO off_s(z) AS CASE
  WHEN z IS NULL OR z IN ('', 'Z', 'z', 'UTC', 'GMT') THEN 0
  ELSE (CASE WHEN z[1] = '-' THEN -1 ELSE 1 END) *
       (z[2:3]::INTEGER * 3600 + right(replace(z, ':', ''), 2)::INTEGER * 60) END;
CREATE OR REPLACE MACRO off_ok(z) AS CASE
  WHEN z IS NULL OR z IN ('', 'Z', 'z', 'UTC', 'GMT') THEN true
  ELSE z[2:3]::INTEGER <= 23 AND right(replace(z, ':', ''), 2)::INTEGER <= 59 END;
CREATE OR REPLACE MACRO parts_ok(p) AS p IS NOT NULL AND p.y <> '' AND p.y <> '0000'
  AND try_cast(p.y || '-' || p.mo || '-' || p.d AS DATE) IS NOT NULL
  AND try_cast(p.h AS INTEGER) <= 23 AND try_cast(p.mi AS INTEGER) <= 59 AND try_cast(p.s AS INTEGER) <= 59
  AND off_ok(p.z);
-- Unix seconds of the parts (the fraction dropped: every time here is read to the second).
CREATE OR REPLACE MACRO parts_epoch(p) AS
  date_diff('day', DATE '1970-01-01', (p.y || '-' || p.mo || '-' || p.d)::DATE)::BIGINT * 86400
  + p.h::BIGINT * 3600 + p.mi::BIGINT * 60 + p.s::BIGINT - off_s(p.z);
CREATE OR REPLACE MACRO how(local_s) AS
  ((floor(local_s / 86400)::BIGINT + 3) % 7 + 7) % 7 * 24 + floor((local_s - floor(local_s / 86400)::BIGINT * 86400) / 3600)::BIGINT;
"""


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def read_csv_header(path):
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    text = head.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text))
    return [name.strip(" \t").lower() for name in next(reader)]


def field_positions(names, kind):
    """Maps each canonical field to the index of the first column that names it."""
    positions = {}
    for field, aliases in ALIASES[kind].items():
        for alias in aliases:
            if alias in names:
                positions[field] = names.index(alias)
                break
    return positions


class Loader:
    def __init__(self, con):
        self.con = con
        self.n = 0

    def load_csv(self, path, kind):
        """A relation (row, f_<field>..., pre_err) over the CSV's records: every record
        with its number, the rows DuckDB rejects (wrong field count, unterminated quote)
        with `pre_err` set."""
        self.n += 1
        tag = f"t{self.n}"
        names = read_csv_header(path)
        pos = field_positions(names, kind)
        cols = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(names))) + "}"
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {tag}_read AS
            SELECT * FROM read_csv({sql_str(path)}, header = true, columns = {cols},
              delim = ',', quote = '"', escape = '"', auto_detect = false, strict_mode = true,
              ignore_errors = true, store_rejects = true, rejects_table = '{tag}_rej',
              rejects_scan = '{tag}_scan', null_padding = false, max_line_size = 4194304)""")
        # The table keeps the file's order (preserve_insertion_order), so its rowid counts the
        # accepted records in order.
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {tag}_raw AS SELECT rowid + 1 AS k, * FROM {tag}_read")
        rejected = self.con.execute(f"""
            SELECT DISTINCT line - 1 AS row, error_type FROM {tag}_rej ORDER BY 1""").fetchall()
        good = self.con.execute(f"SELECT count(*) FROM {tag}_raw").fetchone()[0]
        total = good + len({r for r, _ in rejected})
        rej_rows = sorted({r for r, _ in rejected})
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {tag}_rej_rows AS SELECT unnest(?::BIGINT[]) AS row", [rej_rows])
        # The k-th accepted record is the k-th record number that was not rejected.
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {tag}_map AS
            SELECT row, row_number() OVER (ORDER BY row) AS k FROM range(1, {total + 1}) r(row)
            WHERE row NOT IN (SELECT row FROM {tag}_rej_rows)""")
        reasons = {}
        for row, error_type in rejected:
            reason = "unterminated quote" if "QUOTE" in error_type.upper() else "wrong field count"
            reasons.setdefault(row, reason)
        fields = ", ".join(
            (f"c{pos[f]} AS f_{f}" if f in pos else f"NULL::VARCHAR AS f_{f}") for f in ALIASES[kind])
        nulls = ", ".join(f"NULL::VARCHAR AS f_{f}" for f in ALIASES[kind])
        rej_values = ", ".join(f"({r}, {sql_str(reason)})" for r, reason in sorted(reasons.items())) or "(NULL, NULL)"
        # docs/formats.md "Record length": each field counts its bytes plus one.
        reclen = " + ".join(f"strlen(coalesce(c{i}, '')) + 1" for i in range(len(names)))
        return f"""
            SELECT m.row, {fields},
              CASE WHEN {reclen} > 1048576 THEN 'record too long' END AS pre_err,
              CASE WHEN {reclen} > 1048576 THEN '' END AS pre_col, 'csv' AS fmt
            FROM {tag}_raw r JOIN {tag}_map m USING (k)
            UNION ALL
            SELECT row, {nulls}, reason AS pre_err, '' AS pre_col, 'csv' AS fmt
            FROM (VALUES {rej_values}) v(row, reason) WHERE row IS NOT NULL"""

    def load_ndjson(self, path, kind):
        """A relation like load_csv's over the NDJSON lines (row = line number)."""
        self.n += 1
        tag = f"t{self.n}"
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {tag}_lines AS
            SELECT row, CASE WHEN row = 1 AND starts_with(line, chr(65279)) THEN line[2:] ELSE line END AS line
            FROM (
              SELECT generate_subscripts(lines, 1) AS row, unnest(lines) AS line
              FROM (SELECT string_split(regexp_replace(content, chr(13) || chr(10), chr(10), 'g'), chr(10)) AS lines
                    FROM read_text({sql_str(path)})))""")
        # Keys: exact names for posts (snake_case first, then lowerCamelCase); any case for
        # the other kinds, the first alias present.
        exprs = []
        for field, aliases in ALIASES[kind].items():
            if kind == "posts":
                keys = [field] + ([POST_CAMEL[field]] if field in POST_CAMEL else [])
                key_expr = "CASE " + " ".join(
                    f"WHEN list_contains(keys, {sql_str(k)}) THEN {sql_str(k)}" for k in keys) + " ELSE NULL END"
            else:
                key_expr = "CASE " + " ".join(
                    f"WHEN list_contains(lkeys, {sql_str(a)}) THEN keys[list_position(lkeys, {sql_str(a)})]"
                    for a in aliases) + " ELSE NULL END"
            exprs.append(f"{key_expr} AS k_{field}")
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {tag}_v AS
            SELECT row, line, json_valid(line) AS ok, strlen(line) AS nbytes FROM {tag}_lines WHERE NOT regexp_full_match(line, '[ \t]*')""")
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {tag}_o AS
            SELECT row, line, json_type(line) = 'OBJECT' AS isobj FROM {tag}_v WHERE ok""")
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {tag}_k AS
            SELECT row, line, json_keys(line) AS keys FROM {tag}_o WHERE isobj""")
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {tag}_obj AS
            SELECT v.row, v.nbytes, coalesce(k.line, '{{}}') AS line, v.ok, coalesce(o.isobj, false) AS isobj, {", ".join(exprs)}
            FROM {tag}_v v LEFT JOIN {tag}_o o USING (row)
            LEFT JOIN (SELECT *, list_transform(keys, lambda x: lower(x)) AS lkeys FROM {tag}_k) k USING (row)""")
        fields = []
        type_checks = []
        for field in ALIASES[kind]:
            path_expr = f"'$.\"' || replace(k_{field}, '\"', '\\\"') || '\"'"
            jtype = f"json_type(line, {path_expr})"
            # A value as text: a string's content, a number's or boolean's JSON text; null absent.
            fields.append(f"""CASE WHEN k_{field} IS NULL OR {jtype} = 'NULL' THEN NULL
                 WHEN {jtype} = 'VARCHAR' THEN json_extract_string(line, {path_expr})
                 ELSE json_extract(line, {path_expr})::VARCHAR END AS f_{field}""")
            if kind == "posts" and field in POST_TEXT:
                type_checks.append((field, f"k_{field} IS NOT NULL AND {jtype} NOT IN ('VARCHAR', 'NULL')"))
        pre = "CASE WHEN nbytes > 1048576 THEN 'record too long' WHEN NOT ok THEN 'invalid JSON' WHEN NOT isobj THEN 'not an object' " + " ".join(
            f"WHEN {cond} THEN 'not a string'" for _, cond in type_checks) + " ELSE NULL END"
        pre_col = "CASE WHEN nbytes > 1048576 OR NOT ok OR NOT isobj THEN '' " + " ".join(
            f"WHEN {cond} THEN '{field}'" for field, cond in type_checks) + " ELSE NULL END"
        ok_fields = ", ".join(fields)
        return f"""
            SELECT row, {ok_fields}, pre_err, pre_col, 'ndjson' AS fmt FROM (
              SELECT *, {pre} AS pre_err, {pre_col} AS pre_col FROM {tag}_obj)"""


# ---------------------------------------------------------------- loading and validity


def load_all(con, data, manifest):
    loader = Loader(con)
    per_kind = {}
    for entry in manifest["files"]:
        path = os.path.join(data, entry["file"])
        kind = entry["kind"]
        if os.path.getsize(path) == 0:
            continue  # an empty file has no rows
        rel = loader.load_csv(path, kind) if entry["format"] == "csv" else loader.load_ndjson(path, kind)
        src = (f"SELECT {sql_str(entry['name'])} AS source, {sql_str(entry.get('platform', ''))} AS src_platform, "
               f"{sql_str(entry.get('account', ''))} AS src_account, {sql_str(entry.get('timezone', ''))} AS src_tz, "
               f"{sql_str(entry.get('business_hours', ''))} AS src_bh, * FROM ({rel})")
        per_kind.setdefault(kind, []).append(src)
    for kind in ("posts", "orders", "messages", "reviews", "ad_insights"):
        parts = per_kind.get(kind)
        if parts:
            con.execute(f"CREATE OR REPLACE TEMP TABLE raw_{kind} AS " + " UNION ALL ".join(parts))
        else:
            cols = ", ".join(f"NULL::VARCHAR AS f_{f}" for f in ALIASES[kind])
            con.execute(f"""CREATE OR REPLACE TEMP TABLE raw_{kind} AS SELECT ''::VARCHAR AS source, ''::VARCHAR AS src_platform,
                ''::VARCHAR AS src_account, ''::VARCHAR AS src_tz, ''::VARCHAR AS src_bh, 0::BIGINT AS row, {cols},
                NULL::VARCHAR AS pre_err, NULL::VARCHAR AS pre_col, '' AS fmt WHERE false""")


def first_error(checks):
    """SQL: the first (reason, column) of a list of (condition, reason, column)."""
    reason = "CASE " + " ".join(f"WHEN {c} THEN {sql_str(r)}" for c, r, _ in checks) + " ELSE NULL END"
    column = "CASE " + " ".join(f"WHEN {c} THEN {sql_str(col)}" for c, _, col in checks) + " ELSE NULL END"
    return reason, column


def validate(con):
    # Posts (docs/formats.md "Bad rows": whole record, not a string, control characters,
    # values, counts in table order).
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE posts_pre AS
        SELECT *, rfc_parts(tt(f_created_at)) AS ts,
          {", ".join(f"count_err(f_{f}) AS e_{f}" for f in POST_COUNTS)},
          {", ".join(f"has_ctl(f_{f}) AS x_{f}" for f in POST_TEXT)}
        FROM raw_posts""")
    checks = [("pre_err IS NOT NULL AND pre_col = ''", "pre_err", "pre_col")]
    checks += [(f"pre_err IS NOT NULL AND pre_col = '{f}'", "'not a string'", sql_str(f)) for f in POST_TEXT]
    checks += [(f"x_{f}", "'control character'", sql_str(f)) for f in POST_TEXT]
    checks += [("blank(f_id)", "'missing'", "'id'"), ("blank(f_created_at)", "'missing'", "'created_at'"),
               ("NOT parts_ok(ts)", "'invalid timestamp'", "'created_at'")]
    checks += [(f"e_{f} IS NOT NULL", f"e_{f}", sql_str(f)) for f in POST_COUNTS]
    reason = "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r, _ in checks) + " ELSE NULL END"
    column = "CASE " + " ".join(f"WHEN {c} THEN {col}" for c, _, col in checks) + " ELSE NULL END"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE posts_checked2 AS
        SELECT *, {reason} AS r0, {column} AS c0 FROM posts_pre""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE posts AS
        SELECT source, row, src_tz,
          CASE WHEN blank(f_platform) THEN src_platform ELSE tt(f_platform) END AS platform,
          CASE WHEN blank(f_account) THEN src_account ELSE tt(f_account) END AS account,
          CASE lower(tt(coalesce(f_media_type, '')))
            WHEN 'text' THEN 'text' WHEN 'status' THEN 'text'
            WHEN 'image' THEN 'image' WHEN 'photo' THEN 'image' WHEN 'picture' THEN 'image'
            WHEN 'video' THEN 'video' WHEN 'reel' THEN 'video' WHEN 'reels' THEN 'video'
            WHEN 'short' THEN 'video' WHEN 'shorts' THEN 'video'
            WHEN 'carousel' THEN 'carousel' WHEN 'carousel_album' THEN 'carousel' WHEN 'album' THEN 'carousel'
            WHEN 'link' THEN 'link' WHEN 'article' THEN 'link'
            ELSE 'other' END AS media_type,
          {", ".join(f"CASE WHEN NOT blank(f_{f}) THEN replace(tt(f_{f}), ',', '')::HUGEINT END AS {f}" for f in POST_COUNTS[:8])},
          parts_epoch(ts) AS epoch, off_s(ts.z) AS off
        FROM posts_checked2 WHERE r0 IS NULL""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE posts AS
        SELECT *, coalesce(likes, 0) + coalesce(comments, 0) + coalesce(shares, 0) + coalesce(saves, 0) AS eng,
          CASE WHEN src_tz = '' THEN 'offset' ELSE src_tz END AS zone,
          CASE WHEN src_tz = '' THEN epoch + off
               ELSE epoch(timezone(src_tz, to_timestamp(epoch)))::BIGINT END AS local_s
        FROM posts""")
    con.execute("CREATE OR REPLACE TEMP TABLE posts AS SELECT *, how(local_s) AS hour FROM posts")

    # Orders.
    reason, column = first_error([
        ("pre_err IS NOT NULL", "__pre__", ""),
        ("blank(f_id)", "missing", "id"), ("blank(f_created_at)", "missing", "created_at"),
        ("NOT parts_ok(lp) AND NOT isnum", "invalid timestamp", "created_at"),
        ("blank(f_total)", "missing", "total"), ("NOT dec_ok(f_total)", "not a decimal", "total"),
    ])
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE orders_checked AS
        SELECT *, CASE WHEN pre_err IS NOT NULL THEN pre_err ELSE {reason} END AS r0, {column} AS c0 FROM (
          SELECT *, loose_parts(tt(f_created_at)) AS lp, regexp_full_match(tt(f_created_at), '[0-9]+') AS isnum
          FROM raw_orders)""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE orders AS
        SELECT source, row, src_tz,
          CASE WHEN blank(f_platform) THEN coalesce(nullif(src_platform, ''), 'web') ELSE tt(f_platform) END AS platform,
          CASE WHEN blank(f_account) THEN src_account ELSE tt(f_account) END AS account,
          CASE WHEN isnum THEN tt(f_created_at)::BIGINT ELSE parts_epoch(lp) END AS epoch,
          CASE WHEN isnum THEN 0 ELSE off_s(lp.z) END AS off,
          coalesce(tt(f_customer), '') AS customer, tt(f_total)::DECIMAL(38, 18) AS total, tt(f_total) AS total_text,
          upper(coalesce(tt(f_currency), '')) AS currency,
          coalesce(tt(f_landing_site), '') AS landing_site, coalesce(f_referring_site, '') AS referring_site
        FROM orders_checked WHERE r0 IS NULL""")

    # Messages.
    reason, column = first_error([
        ("pre_err IS NOT NULL", "__pre__", ""),
        ("blank(f_conversation)", "missing", "conversation"),
        ("blank(f_direction)", "missing", "direction"),
        ("lower(tt(f_direction)) NOT IN ('inbound', 'in', 'received', 'outbound', 'out', 'sent')",
         "not inbound or outbound", "direction"),
        ("blank(f_at)", "missing", "at"),
        ("NOT parts_ok(lp) AND NOT isnum", "invalid timestamp", "at"),
    ])
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE messages_checked AS
        SELECT *, CASE WHEN pre_err IS NOT NULL THEN pre_err ELSE {reason} END AS r0, {column} AS c0 FROM (
          SELECT *, loose_parts(tt(f_at)) AS lp, regexp_full_match(tt(f_at), '[0-9]+') AS isnum FROM raw_messages)""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE messages AS
        SELECT source, row, src_tz, src_bh,
          CASE WHEN blank(f_platform) THEN src_platform ELSE tt(f_platform) END AS platform,
          CASE WHEN blank(f_account) THEN src_account ELSE tt(f_account) END AS account,
          tt(f_conversation) AS conversation,
          lower(tt(f_direction)) IN ('inbound', 'in', 'received') AS inbound,
          CASE WHEN isnum THEN tt(f_at)::BIGINT ELSE parts_epoch(lp) END AS epoch,
          CASE WHEN isnum THEN 0 ELSE off_s(lp.z) END AS off
        FROM messages_checked WHERE r0 IS NULL""")

    # Reviews.
    reason, column = first_error([
        ("pre_err IS NOT NULL", "__pre__", ""),
        ("blank(f_created_at)", "missing", "created_at"),
        ("NOT parts_ok(lp) AND NOT isnum", "invalid timestamp", "created_at"),
        ("blank(f_rating)", "missing", "rating"),
        ("NOT regexp_full_match(tt(f_rating), '[1-5](\\.0+)?')", "out of range", "rating"),
    ])
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE reviews_checked AS
        SELECT *, CASE WHEN pre_err IS NOT NULL THEN pre_err ELSE {reason} END AS r0, {column} AS c0 FROM (
          SELECT *, loose_parts(tt(f_created_at)) AS lp, regexp_full_match(tt(f_created_at), '[0-9]+') AS isnum
          FROM raw_reviews)""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE reviews AS
        SELECT source, row,
          CASE WHEN blank(f_platform) THEN coalesce(nullif(src_platform, ''), 'web') ELSE tt(f_platform) END AS platform,
          CASE WHEN blank(f_account) THEN src_account ELSE tt(f_account) END AS account,
          tt(f_rating)[1]::INTEGER AS stars,
          CASE WHEN isnum THEN tt(f_created_at)::BIGINT ELSE parts_epoch(lp) END AS epoch,
          CASE lower(tt(coalesce(f_verified, ''))) WHEN 'true' THEN true WHEN 'yes' THEN true WHEN '1' THEN true
               WHEN 'false' THEN false WHEN 'no' THEN false WHEN '0' THEN false ELSE NULL END AS verified,
          CASE WHEN blank(f_media) THEN 0
               WHEN regexp_full_match(tt(f_media), '[0-9]+') THEN tt(f_media)::BIGINT
               ELSE len(string_split(tt(f_media), ',')) END AS media,
          CASE WHEN blank(f_replied) THEN false
               WHEN lower(tt(f_replied)) IN ('no', 'false', '0') THEN false
               ELSE true END AS replied,
          CASE lower(tt(coalesce(f_status, ''))) WHEN 'ok' THEN 'published'
               WHEN 'yes' THEN 'published' WHEN 'true' THEN 'published'
               WHEN 'no' THEN 'hidden' WHEN 'false' THEN 'hidden'
               ELSE lower(tt(coalesce(f_status, ''))) END AS status
        FROM reviews_checked WHERE r0 IS NULL""")

    # Ad insights.
    ad_checks = [("pre_err IS NOT NULL", "__pre__", ""),
                 ("blank(f_date)", "missing", "date"),
                 ("NOT regexp_full_match(tt(f_date), '[0-9]{4}-[0-9]{2}-[0-9]{2}') OR try_cast(tt(f_date) AS DATE) IS NULL "
                  "OR tt(f_date) < '1970-01-01'", "invalid date", "date"),
                 ("blank(f_ad)", "missing", "ad"),
                 ("NOT blank(f_spend) AND NOT dec_ok(f_spend)", "not a decimal", "spend")]
    ad_checks += [(f"count_err(f_{f}) IS NOT NULL", "not a count", f) for f in ("impressions", "clicks", "conversions")]
    ad_checks += [("NOT blank(f_claimed_roas) AND NOT dec_ok(f_claimed_roas)", "not a decimal", "claimed_roas")]
    reason, column = first_error(ad_checks)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ads_checked AS
        SELECT *, CASE WHEN pre_err IS NOT NULL THEN pre_err ELSE {reason} END AS r0, {column} AS c0 FROM raw_ad_insights""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE ads AS
        SELECT source, row,
          CASE WHEN blank(f_platform) THEN src_platform ELSE tt(f_platform) END AS platform,
          CASE WHEN blank(f_account) THEN src_account ELSE tt(f_account) END AS account,
          tt(f_date)::DATE AS day, coalesce(tt(f_campaign), '') AS campaign,
          CASE WHEN blank(f_spend) THEN NULL ELSE tt(f_spend)::DECIMAL(38, 12) END AS spend, tt(f_spend) AS spend_text,
          count_val(f_impressions) AS impressions, count_val(f_clicks) AS clicks,
          count_val(f_conversions) AS conversions,
          CASE WHEN blank(f_claimed_roas) THEN NULL ELSE tt(f_claimed_roas)::DECIMAL(38, 12) END AS claimed_roas, tt(f_claimed_roas) AS roas_text
        FROM ads_checked WHERE r0 IS NULL""")
    # Money is summed exactly as DECIMAL: make sure no amount has more digits than its scale.
    for table, column, scale in (("orders", "total_text", 18), ("ads", "spend_text", 12), ("ads", "roas_text", 12)):
        worst = con.execute(f"""SELECT max(length(split_part({column}, '.', 2))), max(length(split_part(ltrim({column}, '-'), '.', 1)))
                                FROM {table} WHERE {column} IS NOT NULL""").fetchone()
        if worst[0] is not None and (worst[0] > scale or worst[1] > 38 - scale - 6):
            sys.exit(f"reference: {table}.{column} has amounts with {worst[0]} decimals or {worst[1]} integer digits; "
                     f"the reference sums them as DECIMAL(38, {scale}) and would round them")


# ---------------------------------------------------------------- sketches


def dd_bucket_value(x):
    """What the DDSketch answers for a value x (docs/reports.md "Quantile sketch")."""
    if x is None:
        return None
    if x <= 1e-9:
        return 0.0
    if math.isinf(x):
        i = 4096
    else:
        i = math.ceil(math.log(x) / LN_GAMMA)
        i = max(-4096, min(4096, i))
    return 2 * math.pow(GAMMA, i) / (GAMMA + 1)


def quantiles(con, table, keys, value, qs, where="true"):
    """{key tuple: {q: exact value at rank floor(q (n - 1))}} over the non-null values."""
    key_list = ", ".join(keys)
    picks = " OR ".join(f"rk = CAST(floor({q!r}::DOUBLE * (n - 1)) AS BIGINT)" for q in qs)
    rows = con.execute(f"""
        SELECT {key_list}, rk, n, v FROM (
          SELECT {key_list}, v, row_number() OVER (PARTITION BY {key_list} ORDER BY v) - 1 AS rk,
                 count(*) OVER (PARTITION BY {key_list}) AS n
          FROM (SELECT {key_list}, {value} AS v FROM {table} WHERE ({where}) AND {value} IS NOT NULL))
        WHERE {picks}""").fetchall()
    out = {}
    k = len(keys)
    for row in rows:
        key = tuple(row[:k])
        rk, n, v = row[k], row[k + 1], row[k + 2]
        for q in qs:
            if rk == int(math.floor(q * (n - 1))):
                out.setdefault(key, {})[q] = float(v)
    return out


def fnv1a_fmix(value):
    h = 0xCBF29CE484222325
    for b in value.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & 0xFFFFFFFFFFFFFFFF
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & 0xFFFFFFFFFFFFFFFF
    h ^= h >> 33
    return h


def hll_registers(values):
    regs = {}
    for v in values:
        h = fnv1a_fmix(v)
        j = h >> 50
        w = (h << 14) & 0xFFFFFFFFFFFFFFFF
        rank = 51 if w == 0 else 65 - w.bit_length()
        rank = min(rank, 51)
        if regs.get(j, 0) < rank:
            regs[j] = rank
    return regs


def hll_sigma(x):
    y, z = 1.0, x
    while True:
        x = x * x
        nz = z + x * y
        y *= 2
        if nz == z:
            return z
        z = nz


def hll_tau(x):
    if x <= 0 or x >= 1:
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        y *= 0.5
        nz = z - (1 - x) ** 2 * y
        if nz == z:
            return z / 3
        z = nz


def hll_estimate_exact(regs):
    """Ertl's improved raw estimator (docs/reports.md "Distinct sketch")."""
    m, q = 16384, 50
    if not regs:
        return 0.0
    c = [0.0] * (q + 2)
    c[0] = float(m - len(regs))
    for r in regs.values():
        c[r] += 1
    z = m * hll_tau(1 - c[q + 1] / m)
    for k in range(q, 0, -1):
        z = 0.5 * (z + c[k])
    z += m * hll_sigma(c[0] / m)
    return m * m / (2 * math.log(2)) / z


def hll_estimate(regs):
    return int(math.floor(hll_estimate_exact(regs) + 0.5))


def hll_union(a, b):
    out = dict(a)
    for j, r in b.items():
        if out.get(j, 0) < r:
            out[j] = r
    return out


# ---------------------------------------------------------------- reports


def ratio(a, b):
    if b is None or b == 0:
        return None
    return float(a) / float(b)


def dec_text(d):
    if d is None:
        return "0"
    d = Decimal(d)
    if d == 0:
        return "0"
    text = format(d.normalize(), "f")
    return text


def label(hour):
    return f"{DAYS[hour // 24]} {hour % 24:02d}:00"


def engagement(con):
    sums = """count(*) AS posts, sum(coalesce(likes, 0)) AS likes, sum(coalesce(comments, 0)) AS comments,
        sum(coalesce(shares, 0)) AS shares, sum(coalesce(saves, 0)) AS saves, sum(coalesce(reach, 0)) AS reach,
        sum(coalesce(impressions, 0)) AS impressions, sum(coalesce(clicks, 0)) AS clicks,
        sum(coalesce(video_views, 0)) AS video_views, sum(eng) AS engagements,
        coalesce(sum(eng) FILTER (WHERE reach IS NOT NULL), 0) AS ewr,
        coalesce(sum(eng) FILTER (WHERE impressions IS NOT NULL), 0) AS ewi,
        coalesce(sum(clicks) FILTER (WHERE clicks IS NOT NULL AND impressions IS NOT NULL), 0) AS ctr_c,
        coalesce(sum(impressions) FILTER (WHERE clicks IS NOT NULL AND impressions IS NOT NULL), 0) AS ctr_i"""
    cur = con.execute(f"SELECT platform, account, media_type, {sums} FROM posts GROUP BY ALL")
    names = [d[0] for d in cur.description]
    groups = [dict(zip(names, r)) for r in cur.fetchall()]
    cur = con.execute(f"SELECT 'all' AS platform, 'all' AS account, 'all' AS media_type, {sums} FROM posts")
    total = dict(zip(names, cur.fetchone()))
    keys = ["platform", "account", "media_type"]
    q_reach = quantiles(con, "posts", keys, "eng::DOUBLE / reach::DOUBLE", [0.5], "reach > 0")
    q_impr = quantiles(con, "posts", keys, "eng::DOUBLE / impressions::DOUBLE", [0.5], "impressions > 0")
    con.execute("CREATE OR REPLACE TEMP VIEW posts_all AS SELECT 'all' AS platform, 'all' AS account, 'all' AS media_type, * EXCLUDE (platform, account, media_type) FROM posts")
    q_reach.update(quantiles(con, "posts_all", keys, "eng::DOUBLE / reach::DOUBLE", [0.5], "reach > 0"))
    q_impr.update(quantiles(con, "posts_all", keys, "eng::DOUBLE / impressions::DOUBLE", [0.5], "impressions > 0"))

    def row(g):
        if g["posts"] is None or (g["posts"] == 0):
            g = {**g, **{k: 0 for k in names[3:]}}
        key = (g["platform"], g["account"], g["media_type"])
        out = {"platform": g["platform"], "account": g["account"], "media_type": g["media_type"]}
        for f in ("posts", "likes", "comments", "shares", "saves", "reach", "impressions", "clicks", "video_views",
                  "engagements"):
            out[f] = int(g[f] or 0)
        rates = {"engagement_rate_reach": ratio(g["ewr"], g["reach"]),
                 "engagement_rate_impressions": ratio(g["ewi"], g["impressions"]),
                 "ctr": ratio(g["ctr_c"], g["ctr_i"])}
        out.update({k: v for k, v in rates.items() if v is not None})
        sketch = {}
        for field, table in (("median_rate_reach", q_reach), ("median_rate_impressions", q_impr)):
            if key in table:
                out[field] = table[key][0.5]
                sketch[field] = dd_bucket_value(table[key][0.5])
        out["_sketch"] = sketch
        return out

    rows = sorted((row(g) for g in groups), key=lambda r: (r["platform"].encode(), r["account"].encode(),
                                                           r["media_type"].encode()))
    return {"rows": rows, "total": row(total)}


def best_time(con):
    keys = ["platform", "account", "zone", "hour"]
    cells = con.execute("""
        SELECT platform, account, zone, hour, count(*) AS posts, count(*) FILTER (WHERE reach > 0) AS pwr,
               sum(eng) AS engagements
        FROM posts GROUP BY ALL""").fetchall()
    q_rate = quantiles(con, "posts", keys, "eng::DOUBLE / reach::DOUBLE", [0.5], "reach > 0")
    q_eng = quantiles(con, "posts", keys, "eng::DOUBLE", [0.5])
    accounts = {}
    for platform, account, zone, hour, posts, pwr, engagements in cells:
        key = (platform, account, zone, hour)
        slot = {"hour": int(hour), "label": label(int(hour)), "posts": int(posts), "posts_with_rate": int(pwr),
                "mean_engagements": float(engagements) / float(posts)}
        sketch = {}
        if key in q_rate:
            slot["median_rate"] = q_rate[key][0.5]
            sketch["median_rate"] = dd_bucket_value(slot["median_rate"])
        slot["median_engagements"] = q_eng[key][0.5]
        sketch["median_engagements"] = dd_bucket_value(slot["median_engagements"])
        slot["_sketch"] = sketch
        accounts.setdefault((platform, account, zone), []).append(slot)
    out = []
    for (platform, account, zone), slots in sorted(accounts.items(), key=lambda kv: tuple(x.encode() for x in kv[0])):
        slots.sort(key=lambda s: s["hour"])
        by_rate = any(s["posts_with_rate"] > 0 for s in slots)
        if by_rate:
            cand = [s for s in slots if s["posts_with_rate"] >= 5]
            value = lambda s: s["_sketch"]["median_rate"]  # noqa: E731
        else:
            cand = [s for s in slots if s["posts"] >= 5]
            value = lambda s: s["_sketch"]["median_engagements"]  # noqa: E731
        cand.sort(key=lambda s: (-value(s), -s["posts"], s["hour"]))
        out.append({"platform": platform, "account": account, "zone": zone, "slots": slots,
                    "recommended": [s["hour"] for s in cand[:3]],
                    "ranked_by": "median_rate" if by_rate else "median_engagements"})
    return {"accounts": out, "min_posts": 5}


CHANNEL_SQL = r"""
CREATE OR REPLACE TEMP TABLE order_visits AS
SELECT *,
  CASE WHEN position('?' IN landing_site) > 0
       THEN split_part(substr(landing_site, position('?' IN landing_site) + 1), '#', 1) ELSE '' END AS query,
  tt(referring_site) AS ref
FROM orders;
CREATE OR REPLACE TEMP TABLE order_params AS
SELECT *, list_transform(list_filter(string_split(query, '&'), lambda p: p <> ''),
  lambda p: {'name': lower(url_decode(replace(split_part(p, '=', 1), '+', ' '))),
        'value': CASE WHEN position('=' IN p) > 0 THEN url_decode(replace(substr(p, position('=' IN p) + 1), '+', ' ')) ELSE '' END}) AS params
FROM order_visits;
CREATE OR REPLACE TEMP TABLE order_tags AS
SELECT *,
  lower(tt(coalesce(list_filter(params, lambda p: p.name = 'utm_source')[1].value, ''))) AS us,
  lower(tt(coalesce(list_filter(params, lambda p: p.name = 'utm_medium')[1].value, ''))) AS um,
  list_filter(params, lambda p: p.name IN ('fbclid', 'gclid', 'gbraid', 'wbraid', 'dclid', 'msclkid', 'ttclid', 'epik',
                                      'li_fat_id', 'twclid'))[1].name AS click,
  CASE WHEN ref = '' THEN NULL ELSE
    lower(regexp_replace(regexp_replace(split_part(split_part(split_part(
      CASE WHEN position('://' IN ref) > 0 THEN substr(ref, position('://' IN ref) + 3) ELSE ref END,
      '/', 1), '?', 1), '#', 1), '^.*@', ''), ':[0-9]*$', '')) END AS host0
FROM order_params;
CREATE OR REPLACE TEMP TABLE order_hosts AS
SELECT *, CASE WHEN h4 LIKE 'mobile.%' THEN substr(h4, 8) ELSE h4 END AS host FROM (
  SELECT *, CASE WHEN h3 LIKE 'lm.%' THEN substr(h3, 4) ELSE h3 END AS h4 FROM (
    SELECT *, CASE WHEN h2 LIKE 'l.%' THEN substr(h2, 3) ELSE h2 END AS h3 FROM (
      SELECT *, CASE WHEN h1 LIKE 'm.%' THEN substr(h1, 3) ELSE h1 END AS h2 FROM (
        SELECT *, CASE WHEN host0 LIKE 'www.%' THEN substr(host0, 5) ELSE host0 END AS h1 FROM order_tags))));
CREATE OR REPLACE MACRO dom(h, d) AS (h = d OR ends_with(h, '.' || d));
CREATE OR REPLACE TEMP TABLE order_channels AS
SELECT *,
  CASE
    WHEN us <> '' OR um <> '' THEN 'utm'
    WHEN click IS NOT NULL THEN 'click'
    WHEN host IS NOT NULL THEN 'referrer'
    ELSE 'direct' END AS rule,
  CASE
    WHEN us <> '' OR um <> '' THEN CASE
      WHEN us IN ('facebook', 'fb', 'meta', 'facebook.com', 'm.facebook.com', 'l.facebook.com') THEN 'facebook'
      WHEN us IN ('instagram', 'ig', 'instagram.com', 'l.instagram.com') THEN 'instagram'
      WHEN us IN ('tiktok', 'tiktok.com') THEN 'tiktok'
      WHEN us IN ('pinterest', 'pinterest.com', 'pin') THEN 'pinterest'
      WHEN us IN ('linkedin', 'linkedin.com', 'lnkd.in') THEN 'linkedin'
      WHEN us IN ('youtube', 'yt', 'youtube.com') THEN 'youtube'
      WHEN us IN ('twitter', 'x', 't.co', 'twitter.com', 'x.com') THEN 'x'
      WHEN us IN ('google', 'google.com') THEN CASE WHEN um IN ('cpc', 'ppc', 'paid', 'paidsearch', 'paid_search', 'paid-search', 'sem', 'cpm') THEN 'google_ads' ELSE 'search' END
      WHEN us IN ('bing', 'bing.com') THEN CASE WHEN um IN ('cpc', 'ppc', 'paid', 'paidsearch', 'paid_search', 'paid-search', 'sem', 'cpm') THEN 'microsoft_ads' ELSE 'search' END
      WHEN us IN ('duckduckgo', 'yahoo', 'yandex', 'baidu', 'ecosia') THEN 'search'
      WHEN us IN ('email', 'newsletter', 'klaviyo', 'mailchimp', 'omnisend', 'brevo') THEN 'email'
      WHEN us = 'sms' THEN 'sms'
      WHEN us = 'whatsapp' THEN 'whatsapp'
      WHEN um IN ('email', 'newsletter') THEN 'email'
      WHEN um = 'sms' THEN 'sms'
      WHEN um IN ('social', 'social-media', 'social_media', 'paid_social', 'paid-social') THEN 'other_social'
      ELSE 'other' END
    WHEN click IS NOT NULL THEN CASE click
      WHEN 'fbclid' THEN 'facebook' WHEN 'msclkid' THEN 'microsoft_ads' WHEN 'ttclid' THEN 'tiktok'
      WHEN 'epik' THEN 'pinterest' WHEN 'li_fat_id' THEN 'linkedin' WHEN 'twclid' THEN 'x'
      ELSE 'google_ads' END
    WHEN host IS NOT NULL THEN CASE
      WHEN dom(host, 'facebook.com') OR dom(host, 'fb.com') OR dom(host, 'fb.me') OR dom(host, 'messenger.com') THEN 'facebook'
      WHEN dom(host, 'instagram.com') THEN 'instagram'
      WHEN dom(host, 'tiktok.com') THEN 'tiktok'
      WHEN dom(host, 'pinterest.com') OR dom(host, 'pin.it') OR starts_with(host, 'pinterest.') THEN 'pinterest'
      WHEN dom(host, 'linkedin.com') OR dom(host, 'lnkd.in') THEN 'linkedin'
      WHEN dom(host, 'youtube.com') OR dom(host, 'youtu.be') THEN 'youtube'
      WHEN dom(host, 'twitter.com') OR dom(host, 'x.com') OR dom(host, 't.co') THEN 'x'
      WHEN dom(host, 'mail.google.com') OR dom(host, 'outlook.live.com') OR dom(host, 'mail.yahoo.com')
           OR starts_with(host, 'com.google.android.gm') THEN 'email'
      WHEN starts_with(host, 'google.') OR starts_with(host, 'yandex.') OR dom(host, 'bing.com')
           OR dom(host, 'duckduckgo.com') OR dom(host, 'search.yahoo.com') OR dom(host, 'ecosia.org')
           OR dom(host, 'baidu.com') THEN 'search'
      ELSE 'referral' END
    ELSE 'direct' END AS channel
FROM order_hosts;
"""


def attribution(con):
    for stmt in CHANNEL_SQL.split(";\n"):
        if stmt.strip():
            con.execute(stmt)
    orders = con.execute("""
        SELECT channel, currency, count(*) AS orders, sum(total) AS revenue,
               count(*) FILTER (WHERE rule = 'utm') AS by_utm, count(*) FILTER (WHERE rule = 'click') AS by_click_id,
               count(*) FILTER (WHERE rule = 'referrer') AS by_referrer
        FROM order_channels GROUP BY ALL""").fetchall()
    clicks = {c: (int(lc), int(n)) for c, lc, n in con.execute("""
        SELECT lower(platform), sum(clicks), count(*) FROM posts WHERE clicks IS NOT NULL GROUP BY ALL""").fetchall()}
    spend = {c: (s, cr, cs) for c, s, cr, cs in con.execute("""
        SELECT lower(platform), coalesce(sum(spend), 0),
               coalesce(sum(claimed_roas * spend) FILTER (WHERE claimed_roas IS NOT NULL AND spend IS NOT NULL), 0),
               coalesce(sum(spend) FILTER (WHERE claimed_roas IS NOT NULL AND spend IS NOT NULL), 0)
        FROM ads GROUP BY ALL""").fetchall()}
    per_channel_orders = {}
    per_channel_currencies = {}
    currency_revenue = {}
    for channel, currency, n, revenue, *_ in orders:
        per_channel_orders[channel] = per_channel_orders.get(channel, 0) + n
        per_channel_currencies.setdefault(channel, set()).add(currency)
        currency_revenue[currency] = currency_revenue.get(currency, Decimal(0)) + Decimal(revenue)
    rows = []

    def channel_fields(channel, revenue, one_currency):
        lc = clicks.get(channel, (0, 0))[0]
        sp, cr, cs = spend.get(channel, (Decimal(0), Decimal(0), Decimal(0)))
        out = {"link_clicks": lc, "ad_spend": dec_text(sp)}
        conv = ratio(per_channel_orders.get(channel, 0), lc)
        if conv is not None:
            out["conversion_rate"] = conv
        if one_currency and Decimal(sp) != 0:
            out["roas"] = float(Decimal(revenue)) / float(Decimal(sp))
        if Decimal(cs) != 0:
            out["claimed_roas"] = float(Decimal(cr)) / float(Decimal(cs))
        return out

    for channel, currency, n, revenue, by_utm, by_click, by_ref in orders:
        row = {"channel": channel, "currency": currency, "orders": int(n), "revenue": dec_text(revenue),
               "aov": float(Decimal(revenue)) / n, "by_utm": int(by_utm), "by_click_id": int(by_click),
               "by_referrer": int(by_ref)}
        if currency_revenue[currency] != 0:
            row["share"] = float(Decimal(revenue)) / float(currency_revenue[currency])
        row.update(channel_fields(channel, revenue, len(per_channel_currencies[channel]) == 1))
        rows.append(row)
    for channel in sorted(set(clicks) | set(spend)):
        if channel in per_channel_orders:
            continue
        row = {"channel": channel, "currency": "", "orders": 0, "revenue": "0", "by_utm": 0, "by_click_id": 0,
               "by_referrer": 0}
        if currency_revenue.get("", Decimal(0)) != 0:
            row["share"] = 0.0
        row.update(channel_fields(channel, Decimal(0), False))
        rows.append(row)
    rows.sort(key=lambda r: (r["currency"].encode(), r["channel"].encode()))
    return {"rows": rows, "model": "last_touch"}


def wilson_lower(pos, n):
    z = 1.959964
    p = pos / n
    return (p + z * z / (2 * n) - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)


def reviews(con):
    agg = """count(*) FILTER (WHERE NOT hidden) AS reviews, count(*) FILTER (WHERE hidden) AS hidden_n,
        count(*) FILTER (WHERE NOT hidden AND stars = 1) AS s1, count(*) FILTER (WHERE NOT hidden AND stars = 2) AS s2,
        count(*) FILTER (WHERE NOT hidden AND stars = 3) AS s3, count(*) FILTER (WHERE NOT hidden AND stars = 4) AS s4,
        count(*) FILTER (WHERE NOT hidden AND stars = 5) AS s5,
        count(*) FILTER (WHERE NOT hidden AND media > 0) AS with_media,
        count(*) FILTER (WHERE NOT hidden AND verified IS NOT NULL) AS verified_known,
        count(*) FILTER (WHERE NOT hidden AND verified) AS verified_n,
        count(*) FILTER (WHERE NOT hidden AND replied) AS replied_n,
        min(epoch) FILTER (WHERE NOT hidden) AS first_s, max(epoch) FILTER (WHERE NOT hidden) AS last_s"""
    con.execute("CREATE OR REPLACE TEMP VIEW reviews_h AS SELECT *, status IN ('spam', 'hidden') AS hidden FROM reviews")
    cur = con.execute(f"SELECT platform, account, {agg} FROM reviews_h GROUP BY ALL")
    names = [d[0] for d in cur.description]
    groups = [dict(zip(names, r)) for r in cur.fetchall()]
    total = dict(zip(names, con.execute(f"SELECT 'all', 'all', {agg} FROM reviews_h").fetchone()))

    def row(g):
        n = int(g["reviews"] or 0)
        stars = [int(g[f"s{i}"] or 0) for i in range(1, 6)]
        out = {"platform": g["platform"], "account": g["account"], "reviews": n, "hidden": int(g["hidden_n"] or 0),
               "stars": stars}
        if n:
            out["mean_rating"] = sum((i + 1) * c for i, c in enumerate(stars)) / n
            pos = stars[3] + stars[4]
            out["share_positive"] = pos / n
            out["positive_lower_bound"] = wilson_lower(pos, n)
            out["share_with_media"] = int(g["with_media"]) / n
            out["share_replied"] = int(g["replied_n"]) / n
        if g["verified_known"]:
            out["share_verified"] = int(g["verified_n"]) / int(g["verified_known"])
        if g["first_s"] is not None:
            first_day = int(g["first_s"]) // 86400
            last_day = int(g["last_s"]) // 86400
            out["first"] = (dt.date(1970, 1, 1) + dt.timedelta(days=first_day)).isoformat()
            out["last"] = (dt.date(1970, 1, 1) + dt.timedelta(days=last_day)).isoformat()
            if n >= 2:
                out["per_week"] = n * 7 / max(1, last_day - first_day + 1)
        return out

    rows = sorted((row(g) for g in groups), key=lambda r: (r["platform"].encode(), r["account"].encode()))
    return {"rows": rows, "total": row(total)}


def ads_report(con):
    agg = """count(*) AS rows, count(*) FILTER (WHERE spend IS NULL OR impressions IS NULL OR clicks IS NULL) AS rows_incomplete,
        coalesce(sum(spend), 0) AS spend, coalesce(sum(impressions), 0) AS impressions, coalesce(sum(clicks), 0) AS clicks,
        coalesce(sum(conversions), 0) AS conversions,
        coalesce(sum(spend) FILTER (WHERE conversions IS NOT NULL AND spend IS NOT NULL), 0) AS conversions_spend,
        coalesce(sum(conversions) FILTER (WHERE spend IS NOT NULL), 0) AS conversions_with_spend,
        coalesce(sum(claimed_roas * spend) FILTER (WHERE claimed_roas IS NOT NULL AND spend IS NOT NULL), 0) AS claimed_revenue,
        coalesce(sum(spend) FILTER (WHERE claimed_roas IS NOT NULL AND spend IS NOT NULL), 0) AS claimed_spend"""
    cur = con.execute(f"SELECT platform, account, campaign, {agg} FROM ads GROUP BY ALL")
    names = [d[0] for d in cur.description]
    groups = [dict(zip(names, r)) for r in cur.fetchall()]
    total = dict(zip(names, con.execute(f"SELECT 'all', 'all', 'all', {agg} FROM ads").fetchone()))

    def row(g):
        out = {"platform": g["platform"], "account": g["account"], "campaign": g["campaign"],
               "rows": int(g["rows"] or 0), "rows_incomplete": int(g["rows_incomplete"] or 0),
               "spend": dec_text(g["spend"]), "impressions": int(g["impressions"] or 0),
               "clicks": int(g["clicks"] or 0), "conversions": int(g["conversions"] or 0),
               "claimed_revenue": dec_text(g["claimed_revenue"])}
        spend = float(Decimal(g["spend"] or 0))
        if out["impressions"]:
            out["cpm"] = spend / out["impressions"] * 1000
            out["ctr"] = out["clicks"] / out["impressions"]
        if out["clicks"]:
            out["cpc"] = spend / out["clicks"]
        if g["conversions_with_spend"]:
            out["cpa"] = float(Decimal(g["conversions_spend"])) / int(g["conversions_with_spend"])
        if Decimal(g["claimed_spend"] or 0) != 0:
            out["claimed_roas"] = float(Decimal(g["claimed_revenue"])) / float(Decimal(g["claimed_spend"]))
        return out

    rows = sorted((row(g) for g in groups),
                  key=lambda r: (r["platform"].encode(), r["account"].encode(), r["campaign"].encode()))
    weeks = []
    for platform, week, spend, impressions, clicks in con.execute("""
        SELECT platform, strftime(day - (isodow(day) - 1)::INTEGER, '%Y-%m-%d') AS week, coalesce(sum(spend), 0),
               coalesce(sum(impressions), 0), coalesce(sum(clicks), 0)
        FROM ads GROUP BY ALL""").fetchall():
        w = {"platform": platform, "week": week, "spend": dec_text(spend), "impressions": int(impressions),
             "clicks": int(clicks)}
        if impressions:
            w["cpm"] = float(Decimal(spend)) / int(impressions) * 1000
        if clicks:
            w["cpc"] = float(Decimal(spend)) / int(clicks)
        weeks.append(w)
    weeks.sort(key=lambda w: (w["platform"].encode(), w["week"]))
    first, last = con.execute("SELECT strftime(min(day), '%Y-%m-%d'), strftime(max(day), '%Y-%m-%d') FROM ads").fetchone()
    out = {"rows": rows, "total": row(total), "weeks": weeks}
    if first:
        out["first"], out["last"] = first, last
    return out


def audience(con, emulate=True):
    orders = con.execute("""
        SELECT platform, account, count(*), count(*) FILTER (WHERE customer = ''),
               count(DISTINCT customer) FILTER (WHERE customer <> '')
        FROM orders GROUP BY ALL""").fetchall()
    msgs = con.execute("""
        SELECT platform, account, count(*), count(DISTINCT conversation)
        FROM messages WHERE inbound GROUP BY ALL""").fetchall()
    rows = {}
    for platform, account, n, guests, customers in orders:
        r = rows.setdefault((platform, account), {"platform": platform, "account": account, "customers": 0, "orders": 0,
                                                   "guest_orders": 0, "conversations": 0, "inbound_messages": 0})
        r.update(orders=int(n), guest_orders=int(guests), customers=int(customers))
    for platform, account, n, convs in msgs:
        r = rows.setdefault((platform, account), {"platform": platform, "account": account, "customers": 0, "orders": 0,
                                                   "guest_orders": 0, "conversations": 0, "inbound_messages": 0})
        r.update(inbound_messages=int(n), conversations=int(convs))
    total = {"platform": "all", "account": "all"}
    total["orders"] = sum(r["orders"] for r in rows.values())
    total["guest_orders"] = sum(r["guest_orders"] for r in rows.values())
    total["inbound_messages"] = sum(r["inbound_messages"] for r in rows.values())
    total["customers"] = con.execute("SELECT count(DISTINCT customer) FROM orders WHERE customer <> ''").fetchone()[0]
    total["conversations"] = con.execute("SELECT count(DISTINCT conversation) FROM messages WHERE inbound").fetchone()[0]
    if emulate:
        all_c, all_v = {}, {}
        cust = {}
        for platform, account, customer in con.execute(
                "SELECT DISTINCT platform, account, customer FROM orders WHERE customer <> ''").fetchall():
            cust.setdefault((platform, account), []).append(customer)
        conv = {}
        for platform, account, c in con.execute(
                "SELECT DISTINCT platform, account, conversation FROM messages WHERE inbound").fetchall():
            conv.setdefault((platform, account), []).append(c)
        for key, r in rows.items():
            rc = hll_registers(cust.get(key, []))
            rv = hll_registers(conv.get(key, []))
            r["_sketch"] = {"customers": hll_estimate(rc), "conversations": hll_estimate(rv)}
            all_c = hll_union(all_c, rc)
            all_v = hll_union(all_v, rv)
        total["_sketch"] = {"customers": hll_estimate(all_c), "conversations": hll_estimate(all_v)}
    out_rows = sorted(rows.values(), key=lambda r: (r["platform"].encode(), r["account"].encode()))
    return {"rows": out_rows, "total": total, "error_bound": 0.01625}


DAY_INDEX = {d: i for i, d in enumerate(DAYS)}


def parse_business_hours(text):
    """[(minute of week start, end)] of docs/reports.md "Business hours"."""
    spans = []
    for part in re.split(r"[;,]", text):
        part = part.strip()
        if not part:
            continue
        days, times = part.split(" ")
        start_t, end_t = times.split("-")
        sm = int(start_t[:2]) * 60 + int(start_t[3:])
        em = int(end_t[:2]) * 60 + int(end_t[3:])
        if "-" in days:
            a, b = days.split("-")
            a, b = DAY_INDEX[a], DAY_INDEX[b]
            n = (b - a) % 7 + 1
            day_list = [(a + i) % 7 for i in range(n)]
        else:
            day_list = [DAY_INDEX[days]]
        for d in day_list:
            spans.append((d * 1440 + sm, d * 1440 + em))
    return spans


def response_time(con):
    # One conversation per source x platform x account x conversation id.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE convs AS
        SELECT source, src_tz, src_bh, platform, account, conversation,
               min(epoch) FILTER (WHERE inbound) AS t0,
               arg_min(off, epoch * 1000000000 + row) FILTER (WHERE inbound) AS off0,
               max(epoch) AS last_at
        FROM messages GROUP BY ALL HAVING count(*) FILTER (WHERE inbound) > 0""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE convs2 AS
        SELECT c.*, (SELECT min(m.epoch) FROM messages m WHERE m.source = c.source AND m.platform = c.platform
                       AND m.account = c.account AND m.conversation = c.conversation AND NOT m.inbound
                       AND m.epoch >= c.t0) AS first_out,
               (SELECT count(*) FROM messages m WHERE m.source = c.source AND m.platform = c.platform
                       AND m.account = c.account AND m.conversation = c.conversation AND NOT m.inbound
                       AND m.epoch = c.last_at) > 0 AS last_out
        FROM convs c""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE convs3 AS
        SELECT *, CASE WHEN src_tz = '' THEN 'offset' ELSE src_tz END AS zone,
          CASE WHEN src_tz = '' THEN t0 + off0 ELSE epoch(timezone(src_tz, to_timestamp(t0)))::BIGINT END AS local_s,
          first_out - t0 AS frt, first_out IS NOT NULL AS answered,
          first_out IS NOT NULL AND last_out AS resolved,
          CASE WHEN first_out IS NOT NULL AND last_out THEN last_at - t0 END AS res
        FROM convs2""")
    # Business hours: 0 without, 1 inside, 2 outside, on the local clock.
    bh_rows = []
    for (bh,) in con.execute("SELECT DISTINCT src_bh FROM convs3 WHERE src_bh <> ''").fetchall():
        for start, end in parse_business_hours(bh):
            bh_rows.append((bh, start, end))
    con.execute("CREATE OR REPLACE TEMP TABLE bh_spans (bh VARCHAR, s BIGINT, e BIGINT)")
    if bh_rows:
        con.executemany("INSERT INTO bh_spans VALUES (?, ?, ?)", bh_rows)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE convs4 AS
        SELECT c.*, how(local_s) AS hour,
          CASE WHEN src_bh = '' THEN 0
               WHEN EXISTS (SELECT 1 FROM bh_spans b WHERE b.bh = c.src_bh
                            AND (((floor(local_s / 86400)::BIGINT + 3) % 7 + 7) % 7) * 1440
                                + floor((local_s - floor(local_s / 86400)::BIGINT * 86400) / 60)::BIGINT >= b.s
                            AND (((floor(local_s / 86400)::BIGINT + 3) % 7 + 7) % 7) * 1440
                                + floor((local_s - floor(local_s / 86400)::BIGINT * 86400) / 60)::BIGINT < b.e) THEN 1
               ELSE 2 END AS bh
        FROM convs3 c""")
    con.execute("""
        CREATE OR REPLACE TEMP VIEW conv_rows AS
        SELECT platform, account, zone, 'all' AS hours, * EXCLUDE (platform, account, zone) FROM convs4
        UNION ALL
        SELECT platform, account, zone, CASE bh WHEN 1 THEN 'inside' ELSE 'outside' END AS hours,
               * EXCLUDE (platform, account, zone) FROM convs4 WHERE bh > 0""")
    keys = ["platform", "account", "zone", "hours"]
    q_first = quantiles(con, "conv_rows", keys, "frt::DOUBLE", [0.5, 0.9], "answered")
    q_res = quantiles(con, "conv_rows", keys, "res::DOUBLE", [0.5, 0.9], "resolved")
    rows = []
    for platform, account, zone, hours, n, answered, w15, w1h, w24, resolved in con.execute("""
        SELECT platform, account, zone, hours, count(*), count(*) FILTER (WHERE answered),
               count(*) FILTER (WHERE frt <= 900), count(*) FILTER (WHERE frt <= 3600),
               count(*) FILTER (WHERE frt <= 86400), count(*) FILTER (WHERE resolved)
        FROM conv_rows GROUP BY ALL""").fetchall():
        key = (platform, account, zone, hours)
        r = {"platform": platform, "account": account, "zone": zone, "hours": hours, "conversations": int(n),
             "answered": int(answered), "unanswered": int(n - answered), "resolved": int(resolved),
             "share_within_15m": w15 / n, "share_within_1h": w1h / n, "share_within_24h": w24 / n}
        sk = {}
        if key in q_first:
            r["first_response_p50_s"] = q_first[key][0.5]
            r["first_response_p90_s"] = q_first[key][0.9]
        if key in q_res:
            r["resolution_p50_s"] = q_res[key][0.5]
            r["resolution_p90_s"] = q_res[key][0.9]
        for f in ("first_response_p50_s", "first_response_p90_s", "resolution_p50_s", "resolution_p90_s"):
            if f in r:
                sk[f] = dd_bucket_value(r[f])
        r["_sketch"] = sk
        rows.append(r)
    order = {"all": 0, "inside": 1, "outside": 2}
    rows.sort(key=lambda r: (r["platform"].encode(), r["account"].encode(), r["zone"].encode(), order[r["hours"]]))
    hkeys = ["platform", "account", "zone", "hour"]
    q_hour = quantiles(con, "convs4", hkeys, "frt::DOUBLE", [0.5], "answered")
    hours = []
    for platform, account, zone, hour, n in con.execute(
            "SELECT platform, account, zone, hour, count(*) FROM convs4 GROUP BY ALL").fetchall():
        h = {"platform": platform, "account": account, "zone": zone, "hour": int(hour), "label": label(int(hour)),
             "conversations": int(n)}
        key = (platform, account, zone, hour)
        if key in q_hour:
            h["median_first_response_s"] = q_hour[key][0.5]
            h["_sketch"] = {"median_first_response_s": dd_bucket_value(h["median_first_response_s"])}
        hours.append(h)
    hours.sort(key=lambda h: (h["platform"].encode(), h["account"].encode(), h["zone"].encode(), h["hour"]))
    return {"rows": rows, "hours": hours}


# ---------------------------------------------------------------- media_lift


MIN_LIFT_POSTS = 10
DETECT_Z = 2.801585219


def _betacf(a, b, x):
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return h


def betainc(a, b, x, y):
    """The regularized incomplete beta function I_x(a, b), with y = 1 - x given exactly."""
    if x <= 0:
        return 0.0
    if y <= 0:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    if x < (a + 1) / (a + b + 2):
        return math.exp(ln_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln_front) * _betacf(b, a, y) / b


def student_t_p(t, df):
    """Two-sided p-value of Student's t with df degrees of freedom."""
    return betainc(df / 2, 0.5, df / (df + t * t), t * t / (df + t * t))


def _ln_moments(values):
    """(n, mean, sample variance) of ln(1 + v), two-pass with exact summation."""
    logs = [math.log1p(v) for v in values]
    n = len(logs)
    if n == 0:
        return 0, None, None
    mean = math.fsum(logs) / n
    var = math.fsum((x - mean) ** 2 for x in logs) / (n - 1) if n > 1 else None
    return n, mean, var


def _lower_median(values):
    s = sorted(values)
    return float(s[(len(s) - 1) // 2])


def media_lift(con):
    cells = {}
    for platform, account, media, likes in con.execute(
            "SELECT platform, account, media_type, likes FROM posts").fetchall():
        c = cells.setdefault((platform, account, media), {"posts": 0, "likes": []})
        c["posts"] += 1
        if likes is not None:
            c["likes"].append(int(likes))
    stats = {}
    for key, c in cells.items():
        n, mean, var = _ln_moments(c["likes"])
        stats[key] = {"posts": c["posts"], "n": n, "mean_ln": mean, "var_ln": var,
                      "sum": sum(c["likes"]), "median": _lower_median(c["likes"]) if n else None}
    rows = []
    for (platform, account, media), st in stats.items():
        if media == "text":
            continue
        row = {"platform": platform, "account": account, "media_type": media, "posts": st["posts"],
               "posts_with_likes": st["n"]}
        sk = {}
        if st["n"]:
            row["median_likes"] = st["median"]
            row["mean_likes"] = st["sum"] / st["n"]
            sk["median_likes"] = dd_bucket_value(st["median"])
        tx = stats.get((platform, account, "text"))
        if tx is None:
            row["_kind"] = "no text"
            row["verdict"] = "no text posts to compare with"
            row["_sketch"] = sk
            rows.append(row)
            continue
        row["text_posts"] = tx["posts"]
        row["text_posts_with_likes"] = tx["n"]
        if tx["n"]:
            row["text_median_likes"] = tx["median"]
            row["text_mean_likes"] = tx["sum"] / tx["n"]
            sk["text_median_likes"] = dd_bucket_value(tx["median"])
        row["_sketch"] = sk
        if st["n"] < MIN_LIFT_POSTS or tx["n"] < MIN_LIFT_POSTS:
            row["_kind"] = "too few"
            row["verdict"] = (f"too few posts to say: {st['n']} {media} and {tx['n']} text posts with likes; "
                              f"{MIN_LIFT_POSTS} of each are needed")
            rows.append(row)
            continue
        # The ratio of medians is the sketches' (checked against the exact medians apart).
        row["_median_ratio_present"] = sk["text_median_likes"] > 0
        if row["_median_ratio_present"]:
            row["median_ratio"] = sk["median_likes"] / sk["text_median_likes"]
        row["geomean_ratio"] = math.exp(st["mean_ln"] - tx["mean_ln"])
        se2 = st["var_ln"] / st["n"] + tx["var_ln"] / tx["n"]
        se = math.sqrt(se2)
        row["detectable_ratio"] = math.exp(DETECT_Z * se)
        row["_se"] = se
        if se2 > 0:
            t = (st["mean_ln"] - tx["mean_ln"]) / se
            a, b = st["var_ln"] / st["n"], tx["var_ln"] / tx["n"]
            df = se2 * se2 / (a * a / (st["n"] - 1) + b * b / (tx["n"] - 1))
            row["welch_t"], row["welch_df"], row["welch_p"] = t, df, student_t_p(t, df)
        row["_kind"] = "interval"
        rows.append(row)
    rows.sort(key=lambda r: (r["platform"].encode(), r["account"].encode(), r["media_type"].encode()))
    return {"min_posts": MIN_LIFT_POSTS, "resamples": 2000, "rows": rows}


# ---------------------------------------------------------------- frequency


FREQUENCY_BANDS = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7), (8, 10), (11, 14), (15, 20), (21, 0)]


def band_of(posts):
    for lo, hi in FREQUENCY_BANDS:
        if posts >= lo and (hi == 0 or posts <= hi):
            return lo, hi
    raise ValueError(posts)


def band_text(lo, hi):
    if hi == 0:
        return f"{lo}+"
    return str(lo) if lo == hi else f"{lo}\u2013{hi}"


def frequency(con):
    weeks = con.execute("""
        SELECT platform, account, zone, d - ((d + 3) % 7 + 7) % 7 AS week, count(*) AS posts, sum(eng) AS eng,
               coalesce(sum(eng) FILTER (WHERE reach IS NOT NULL), 0) AS ewr, coalesce(sum(reach), 0) AS reach,
               count(reach) AS with_reach
        FROM (SELECT *, floor(local_s / 86400)::BIGINT AS d FROM posts) GROUP BY ALL""").fetchall()
    bands = {}
    for platform, account, zone, week, posts, eng, ewr, reach, with_reach in weeks:
        lo, hi = band_of(int(posts))
        b = bands.setdefault((platform, account, zone, lo, hi),
                             {"weeks": 0, "posts": 0, "engagements": 0, "engagements_with_reach": 0, "reach": 0,
                              "with_reach": 0})
        b["weeks"] += 1
        b["posts"] += int(posts)
        b["engagements"] += int(eng)
        b["engagements_with_reach"] += int(ewr)
        b["reach"] += int(reach)
        b["with_reach"] += int(with_reach)
    rows = []
    for (platform, account, zone, lo, hi), b in bands.items():
        row = {"platform": platform, "account": account, "zone": zone, "min_posts": lo, "max_posts": hi,
               "band": band_text(lo, hi), "weeks": b["weeks"], "posts": b["posts"], "engagements": b["engagements"],
               "engagements_per_post": b["engagements"] / b["posts"],
               "engagements_with_reach": b["engagements_with_reach"], "reach": b["reach"]}
        if b["reach"] > 0:
            row["engagement_rate"] = b["engagements_with_reach"] / b["reach"]
        elif b["with_reach"]:
            row["_ambiguous"] = "posts state reach, all 0: the docs do not say whether engagement_rate is absent"
        rows.append(row)
    rows.sort(key=lambda r: (r["platform"].encode(), r["account"].encode(), r["zone"].encode(), r["min_posts"]))
    return {"rows": rows}


# ---------------------------------------------------------------- customers: cohorts and clv


COHORT_MONTHS = 12
CLV_MIN_CUSTOMERS = 50
CLV_MIN_REPEAT = 10
CLV_HORIZON = 52.0


def customers(con):
    """The keyed map of docs/reports.md "Customers": one cell per platform x account x
    currency x customer (guest orders left out), in table `cells`; each purchase day in
    `cust_days`. Needs attribution's `order_channels`."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE cust_orders AS
        SELECT platform, account, currency, customer, epoch, channel, total,
          CASE WHEN src_tz = '' THEN floor((epoch + off) / 86400)::BIGINT
               ELSE floor(epoch(timezone(src_tz, to_timestamp(epoch))) / 86400)::BIGINT END AS day
        FROM order_channels WHERE customer <> ''""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE cust_days AS
        SELECT platform, account, currency, customer, day, sum(total) AS revenue, count(*) AS orders,
               (DATE '1970-01-01' + day::INTEGER) AS date
        FROM cust_orders GROUP BY ALL""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE cells AS
        SELECT d.*, f.first_at, f.first_channel FROM (
          SELECT platform, account, currency, customer, count(*) AS days, sum(orders) AS orders,
                 sum(revenue) AS revenue, min(day) AS first_day, max(day) AS last_day,
                 arg_min(revenue, day) AS first_revenue
          FROM cust_days GROUP BY ALL) d
        JOIN (SELECT platform, account, currency, customer, min(epoch) AS first_at,
                     list(channel ORDER BY epoch, channel)[1] AS first_channel
              FROM cust_orders GROUP BY ALL) f USING (platform, account, currency, customer)""")


def month_index(day):
    d = dt.date(1970, 1, 1) + dt.timedelta(days=int(day))
    return d.year * 12 + d.month - 1


def month_text(index):
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def cohorts(con):
    cells = con.execute("""
        SELECT platform, account, currency, customer, first_day, last_day, first_channel FROM cells""").fetchall()
    days = {}
    for platform, account, currency, customer, day in con.execute(
            "SELECT platform, account, currency, customer, day FROM cust_days").fetchall():
        days.setdefault((platform, account, currency, customer), []).append(int(day))
    last_month = {}
    for platform, account, _c, _u, _f, last_day, _ch in cells:
        m = month_index(last_day)
        if m > last_month.get((platform, account), -1):
            last_month[(platform, account)] = m
    groups = {}
    for platform, account, currency, customer, first_day, _l, channel in cells:
        cm = month_index(first_day)
        active = {month_index(d) - cm for d in days[(platform, account, currency, customer)]}
        for ch in (channel, "all"):
            g = groups.setdefault((platform, account, cm, ch), {"customers": 0, "active": [0] * COHORT_MONTHS})
            g["customers"] += 1
            for k in active:
                if 1 <= k <= COHORT_MONTHS:
                    g["active"][k - 1] += 1
    rows = []
    for (platform, account, cm, ch), g in groups.items():
        reach = max(0, min(COHORT_MONTHS, last_month[(platform, account)] - cm))
        active = g["active"][:reach]
        rows.append({"platform": platform, "account": account, "cohort": month_text(cm), "channel": ch,
                     "customers": g["customers"], "active": active,
                     "share": [a / g["customers"] for a in active]})
    rows.sort(key=lambda r: (r["platform"].encode(), r["account"].encode(), r["cohort"], r["channel"] == "all",
                             r["channel"].encode()))
    return {"months": COHORT_MONTHS, "rows": rows}


class Lifetimes:
    """scripts/analysis/clv-reference.py --stores - in the venv of `clv_python`, started before
    the data load (importing pandas, scipy, autograd and lifetimes takes seconds) and given
    the transactions when the customers are known (`submit`); it fits them while the other
    reports are computed (`result`)."""

    def __init__(self, clv_python, workdir):
        self.proc = None
        self.why = None
        if not clv_python or not os.path.exists(clv_python):
            self.why = f"no lifetimes venv at {clv_python}: the fitted parameters are not checked"
            return
        here = os.path.dirname(os.path.abspath(__file__))
        self.err_path = os.path.join(workdir, "clv-reference.err")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(
            [clv_python, os.path.join(here, "clv-reference.py"), "--stores", "-", "--horizon", str(CLV_HORIZON),
             "--min-gg", str(CLV_MIN_REPEAT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.sent = False

    def submit(self, tx_path=None, ends_path=None):
        if self.proc is None or self.sent:
            return
        job = {"stores": tx_path, "ends": ends_path} if tx_path else {}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.close()
        self.sent = True

    def result(self):
        self.submit()
        out = self.proc.stdout.read()
        code = self.proc.wait(timeout=600)
        self.err.close()
        if code != 0:
            with open(self.err_path) as f:
                sys.exit(f"reference: clv-reference.py failed ({code}): {f.read().strip()[-2000:]}")
        return json.loads(out)["stores"]

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def clv_start(con, workdir, lifetimes):
    """Historic figures now; the stores Haat fits go to `lifetimes` (a Lifetimes, fitting
    them in its own process while the other reports are computed). Returns (report,
    finish) where finish() adds the fits and predictions."""
    agg = """count(*) AS customers, count(*) FILTER (WHERE days > 1) AS repeat, sum(orders) AS orders,
             sum(revenue) AS revenue"""
    groups = con.execute(f"""
        SELECT platform, account, currency, first_channel AS channel, {agg} FROM cells GROUP BY ALL
        UNION ALL
        SELECT platform, account, currency, 'all' AS channel, {agg} FROM cells GROUP BY ALL""").fetchall()
    rows = []
    for platform, account, currency, channel, n, repeat, orders, revenue in groups:
        rows.append({"platform": platform, "account": account, "currency": currency, "channel": channel,
                     "customers": int(n), "repeat_customers": int(repeat), "orders": int(orders),
                     "revenue": dec_text(revenue), "historic_clv": float(Decimal(revenue) / int(n))})
    rows.sort(key=lambda r: (r["platform"].encode(), r["account"].encode(), r["currency"].encode(),
                             r["channel"] == "all", r["channel"].encode()))
    fits = []
    store_keys = {}
    for platform, account, currency, n, repeat, last_day, gg_n in con.execute("""
            SELECT platform, account, currency, count(*), count(*) FILTER (WHERE days > 1), max(last_day),
                   count(*) FILTER (WHERE days > 1 AND revenue - first_revenue > 0)
            FROM cells GROUP BY ALL""").fetchall():
        fit = {"platform": platform, "account": account, "currency": currency, "customers": int(n),
               "repeat_customers": int(repeat),
               "observed_until": (dt.date(1970, 1, 1) + dt.timedelta(days=int(last_day))).isoformat()}
        if n < CLV_MIN_CUSTOMERS or repeat < CLV_MIN_REPEAT:
            fit["note"] = (f"too few customers to fit: {n} customers, {repeat} repeat; "
                           f"{CLV_MIN_CUSTOMERS} and {CLV_MIN_REPEAT} are needed")
        else:
            store_keys[f"s{len(store_keys)}"] = (platform, account, currency)
            fit["_fitted"] = True
            fit["_gg_customers"] = int(gg_n)
        fits.append(fit)
    fits.sort(key=lambda f: (f["platform"].encode(), f["account"].encode(), f["currency"].encode()))
    report = {"unit": "weeks", "horizon": CLV_HORIZON, "fits": fits, "rows": rows}
    # Each fitted store's customers as the models see them (docs/reports.md "The clv report"):
    # x = purchase days - 1, t_x and T in weeks, m_x the mean revenue of the days after the
    # first, and the first order's channel: compare.py evaluates the likelihoods and the
    # predictions at Haat's own parameters with them.
    by_store, store_customers = {}, {}
    for platform, account, currency, customer, days, first_day, last_day, revenue, first_revenue, channel in con.execute("""
            SELECT platform, account, currency, customer, days, first_day, last_day, revenue, first_revenue,
                   first_channel FROM cells ORDER BY platform, account, currency, customer""").fetchall():
        by_store.setdefault((platform, account, currency), []).append(
            (customer, int(days), int(first_day), int(last_day), Decimal(revenue), Decimal(first_revenue), channel))
    for fit in fits:
        if not fit.get("_fitted"):
            continue
        obs = (dt.date.fromisoformat(fit["observed_until"]) - dt.date(1970, 1, 1)).days
        summ = {"x": [], "t_x": [], "T": [], "m": [], "channel": []}
        customers_ = []
        for customer, days, first_day, last_day, revenue, first_revenue, channel in by_store[
                (fit["platform"], fit["account"], fit["currency"])]:
            x = days - 1
            customers_.append(customer)
            summ["x"].append(x)
            summ["t_x"].append((last_day - first_day) / 7)
            summ["T"].append((obs - first_day) / 7)
            summ["m"].append(float((revenue - first_revenue) / x) if x else 0.0)
            summ["channel"].append(channel)
        fit["_summary"] = summ
        store_customers[(fit["platform"], fit["account"], fit["currency"])] = customers_
    if not store_keys:
        lifetimes.submit()
        return report, lambda: report
    if lifetimes.proc is None:
        for fit in fits:
            if fit.get("_fitted"):
                fit["_lifetimes_missing"] = lifetimes.why
        return report, lambda: report
    # Each purchase day's revenue, per fitted store, as lifetimes reads transactions.
    con.execute("CREATE OR REPLACE TEMP TABLE clv_stores (store VARCHAR, platform VARCHAR, account VARCHAR, currency VARCHAR)")
    con.executemany("INSERT INTO clv_stores VALUES (?, ?, ?, ?)", [(k, *v) for k, v in store_keys.items()])
    tx_path = os.path.join(workdir, "clv-transactions.csv")
    ends_path = os.path.join(workdir, "clv-ends.json")
    con.execute(f"""
        COPY (SELECT s.store, d.customer, strftime(d.date, '%Y-%m-%d') AS date, d.revenue::DOUBLE AS amount
              FROM cust_days d JOIN clv_stores s USING (platform, account, currency) ORDER BY ALL)
        TO {sql_str(tx_path)} (HEADER, DELIMITER ',')""")
    ends = {k: f["observed_until"] for f in fits if f.get("_fitted")
            for k, v in store_keys.items() if v == (f["platform"], f["account"], f["currency"])}
    with open(ends_path, "w") as f:
        json.dump(ends, f)
    lifetimes.submit(tx_path, ends_path)
    channels = {}
    for platform, account, currency, customer, channel in con.execute(
            "SELECT platform, account, currency, customer, first_channel FROM cells").fetchall():
        channels[(platform, account, currency, customer)] = channel

    def finish():
        stores = lifetimes.result()
        by_key = {v: k for k, v in store_keys.items()}
        for fit in fits:
            sid = by_key.get((fit["platform"], fit["account"], fit["currency"]))
            if sid is None:
                continue
            s = stores[sid]
            bg, gg = s["bgnbd"], s["gammagamma"]
            fit["_lifetimes"] = {"bgnbd": bg, "gammagamma": gg, "gg_customers": s["gg_customers"]}
            if bg.get("converged", True):
                fit.update(r=bg["r"], alpha=bg["alpha"], a=bg["a"], b=bg["b"], bgnbd_log_likelihood=bg["ll"])
            if gg is not None and gg.get("converged", True):
                fit.update(p=gg["p"], q=gg["q"], gamma=gg["v"], gamma_gamma_log_likelihood=gg["ll"])
            # lifetimes' own summary of the purchase days must be the reference's.
            ours = {c: (x, t, T_, m) for c, x, t, T_, m in zip(
                store_customers[(fit["platform"], fit["account"], fit["currency"])], fit["_summary"]["x"], fit["_summary"]["t_x"], fit["_summary"]["T"],
                fit["_summary"]["m"])}
            lsum = s["summary"]
            bad = [c for c, x, t, T_, m in zip(lsum["customer"], lsum["x"], lsum["t_x"], lsum["T"], lsum["m"])
                   if c not in ours or ours[c][0] != x or abs(ours[c][1] - t) > 1e-9 or abs(ours[c][2] - T_) > 1e-9
                   or abs(ours[c][3] - m) > 1e-6 * max(1.0, abs(m))]
            if bad or len(lsum["customer"]) != len(ours):
                fit["_summary_differs"] = (f"lifetimes' summary differs from the reference's for "
                                           f"{len(bad)} customers, e.g. {bad[:3]}")
            # Predictions from lifetimes' own parameters, averaged per row.
            sums = {}
            for customer, (purchases, spend) in s["predictions"].items():
                if purchases is None:
                    continue
                ch = channels[(fit["platform"], fit["account"], fit["currency"], customer)]
                for c in (ch, "all"):
                    acc = sums.setdefault(c, [0, [], [], []])
                    acc[0] += 1
                    acc[1].append(purchases)
                    if spend is not None:
                        acc[2].append(spend)
                        acc[3].append(purchases * spend)
            for row in rows:
                if (row["platform"], row["account"], row["currency"]) != (fit["platform"], fit["account"], fit["currency"]):
                    continue
                acc = sums.get(row["channel"])
                if acc is None:
                    continue
                lt = {"predicted_purchases": math.fsum(acc[1]) / acc[0]}
                if len(acc[2]) == acc[0]:
                    lt["predicted_spend"] = math.fsum(acc[2]) / acc[0]
                    lt["predicted_clv"] = math.fsum(acc[3]) / acc[0]
                row["_lifetimes"] = lt
        return report

    return report, finish


def bad_rows(con):
    out = []
    for kind, table in (("posts", "posts_checked2"), ("orders", "orders_checked"), ("messages", "messages_checked"),
                        ("reviews", "reviews_checked"), ("ad_insights", "ads_checked")):
        for source, row, reason, column in con.execute(
                f"SELECT source, row, r0, coalesce(c0, '') FROM {table} WHERE r0 IS NOT NULL ORDER BY source, row").fetchall():
            out.append({"source": source, "row": int(row), "column": column, "message": reason, "kind": kind})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the directory of the files")
    ap.add_argument("--manifest", help="default DATA/manifest.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-hll", action="store_true", help="skip the HyperLogLog emulation (slow at millions of keys)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--clv-python", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                         ".build", "clv-venv", "bin", "python"),
                    help="the Python of a venv with lifetimes, for the clv fits (default .build/clv-venv); "
                         "without it the fitted parameters are not checked")
    ap.add_argument("--clv-dir", help="where the transactions for lifetimes go (clv-transactions.csv, "
                                      "clv-ends.json; default a temporary directory)")
    args = ap.parse_args()
    began = time.monotonic()
    with open(args.manifest or os.path.join(args.data, "manifest.json")) as f:
        manifest = json.load(f)
    stack = contextlib.ExitStack()
    # The transactions handed to lifetimes (and its stderr) stay in --clv-dir when given (a
    # temporary directory otherwise).
    clv_dir = args.clv_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="haat-clv-"))
    lifetimes = Lifetimes(args.clv_python, clv_dir)
    stack.callback(lifetimes.close)
    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    con.execute("SET preserve_insertion_order = true")
    for stmt in MACROS.split(";\n"):
        if stmt.strip():
            con.execute(stmt)
    load_all(con, args.data, manifest)
    validate(con)
    report = {}
    bad = bad_rows(con)
    good = sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
               for t in ("posts", "orders", "messages", "reviews", "ads"))
    report["summary"] = {"sources": len(manifest["files"]), "sources_ok": len(manifest["files"]), "rows": good,
                         "bad_rows": len(bad), "tasks": len(manifest["files"])}
    timings = {}

    def timed(name, fn, *a, **kw):
        t = time.monotonic()
        out = fn(*a, **kw)
        timings[name] = round(time.monotonic() - t, 2)
        return out

    timings["load"] = round(time.monotonic() - began, 2)
    with stack:
        # The customers map needs attribution's channels; lifetimes then fits the clv stores
        # in its process while the other reports are computed.
        report["attribution"] = timed("attribution", attribution, con)
        timed("customers", customers, con)
        report["clv"], clv_finish = timed("clv", clv_start, con, clv_dir, lifetimes)
        report["cohorts"] = timed("cohorts", cohorts, con)
        report["engagement"] = timed("engagement", engagement, con)
        report["best_time"] = timed("best_time", best_time, con)
        report["reviews"] = timed("reviews", reviews, con)
        report["ads"] = timed("ads", ads_report, con)
        report["audience"] = timed("audience", audience, con, emulate=not args.no_hll)
        report["response_time"] = timed("response_time", response_time, con)
        report["media_lift"] = timed("media_lift", media_lift, con)
        report["frequency"] = timed("frequency", frequency, con)
        timed("clv_wait", clv_finish)
    report["_timings"] = timings
    report["bad_rows"] = bad
    report["_seconds"] = round(time.monotonic() - began, 2)
    with open(args.out, "w") as f:
        json.dump(report, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"reference: {good} good rows, {len(bad)} bad rows, {report['_seconds']} s -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
