# ruff: noqa: T201  (a command-line tool: it prints)
"""Tables, targets, the summary line and the chart, from a results JSON of bench/run.py.

.venv/bin/python bench/report.py                      # print the latest quick (and full) run
.venv/bin/python bench/report.py FILE.json            # print one run
.venv/bin/python bench/report.py --update-doc         # rewrite docs/PERFORMANCE.md's tables
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
DOC = BENCH.parent / "docs" / "PERFORMANCE.md"

# name: (comparison, bound, what it is)
TARGETS = {
    "list_vs_floor": (">=", 0.5, "filtered list req/s, loanapi / floor, c16"),
    "get_vs_floor": (">=", 0.5, "get-one req/s, loanapi / floor, c16"),
    "legacy_bulk_vs_floor": (">=", 0.5, "admin's /getloans (10,000 rows) req/s / floor, c16"),
    "legacy_bulk_p50_c1_ms": ("<", 100, "admin's /getloans (10,000 rows) p50 at c1 (ms)"),
    "legacy_customer_vs_floor": (">=", 0.5, "/getloans of ~100 loans req/s / floor, c16"),
    "legacy_new_loan_vs_apply": (">=", 0.9, "/new_loan req/s / v1 apply's, c16"),
    "p99_ms_max": (
        "<",
        100,
        "worst p99 at c16 over every scenario but login, the floors, legacy_bulk, portfolio (ms)",
    ),
    "scale_ratio": ("<=", 1.5, "filtered list p50 at 1M / at 10k loans, c16"),
    "customer_scale_ratio": ("<=", 1.5, "a customer's list p50 at 1M / at 10k loans, c16"),
    "deep_page_ratio": ("<=", 1.2, "p50 of a deep page / the first page, c16"),
    "healthz_p99_ms": ("<", 50, "/healthz p99 while 16 clients log in (ms)"),
    "get_p99_during_logins_ms": ("<", 100, "get-one p99 while 16 clients log in (ms)"),
    "repay_vs_apply": (">=", 0.8, "an agent's repayment req/s / v1 apply's, c16"),
    "repay_p99_ms": ("<", 100, "repayment p99 at c16 (ms)"),
    "statement_p99_ms": ("<", 50, "statement (360 months, 60 repayments) p99 at c16 (ms)"),
    "statement_scale_ratio": ("<=", 1.2, "a statement's p50 at 1M / at 10k loans, c16"),
    "portfolio_p50_ms": ("<", 100, "admin portfolio (this month) p50 at c1 (ms)"),
    "cob_seconds": ("<=", 60, "close of business over the book, `loanapi cob` wall time (s)"),
    "cob_vs_floor": ("<=", 3.0, "close of business / one UPDATE of every active loan, time"),
    "cob_rerun_ratio": ("<=", 0.2, "close of business run again for the same day / first run"),
    "cob_scale_ratio": (
        "<=",
        1.2,
        "close of business seconds per loan, the bigger database / the smaller",
    ),
    "cob_get_p99_ms": ("<", 100, "get-one p99 at c16 while close of business runs (ms)"),
    "events_write_ratio": (
        ">=",
        0.9,
        "apply and approve req/s with two webhook endpoints / without, c16 (the lower)",
    ),
    "delivery_lag_p99_ms": ("<", 2000, "webhook delivery lag p99 at apply's rate, c16 (ms)"),
}
ORDER = [
    "admin_list",
    "floor_list",
    "get_one",
    "floor_get",
    "customer_list",
    "schedule",
    "statement",
    "portfolio",
    "legacy_getloans",
    "legacy_bulk",
    "floor_legacy_bulk",
    "legacy_customer_100",
    "floor_legacy_customer_100",
    "apply",
    "legacy_new_loan",
    "repay",
    "edit",
    "approve",
    "login",
]
FLOORS = {"floor_list", "floor_get", "floor_legacy_bulk", "floor_legacy_customer_100"}
FLOOR_OF = {
    "admin_list": "floor_list",
    "get_one": "floor_get",
    "legacy_bulk": "floor_legacy_bulk",
    "legacy_customer_100": "floor_legacy_customer_100",
}
# not in p99_ms_max: login (slow by design), the floors, the 10,000-row list and the portfolio
# (an aggregate over the whole book): their latency is governed by their size, and each has its
# own p50 target at c1
NOT_IN_P99 = {"login", "legacy_bulk", "portfolio"} | FLOORS


def _c16(results: dict[str, Any], name: str) -> dict[str, Any] | None:
    scenario = results.get("scenarios", {}).get(name)
    return scenario["levels"].get("16") if scenario else None


def _p99(run: dict[str, Any] | None) -> float | None:
    if not run:
        return None
    return run["p99_ms"] if run["requests"] else math.inf


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    def ratio(a: str, b: str) -> float | None:
        x, y = _c16(results, a), _c16(results, b)
        return round(x["rps"] / y["rps"], 2) if x and y and y["rps"] else None

    # no answer at all within a measurement counts as an infinite latency, never as none
    p99s = [
        (_p99(s["levels"]["16"]), name)
        for name, s in results["scenarios"].items()
        if name not in NOT_IN_P99 and "16" in s["levels"]
    ]
    worst = max(p99s) if p99s else (None, None)
    scale = results.get("scale") or {}
    resp = (results.get("responsiveness") or {}).get("during_login_storm") or {}
    deep = results.get("deep_page") or {}
    bulk = (results["scenarios"].get("legacy_bulk") or {}).get("levels", {}).get("1")
    return {
        "list_vs_floor": ratio("admin_list", "floor_list"),
        "get_vs_floor": ratio("get_one", "floor_get"),
        "legacy_bulk_vs_floor": ratio("legacy_bulk", "floor_legacy_bulk"),
        "legacy_bulk_p50_c1_ms": (bulk["p50_ms"] if bulk["requests"] else math.inf)
        if bulk
        else None,
        "legacy_customer_vs_floor": ratio("legacy_customer_100", "floor_legacy_customer_100"),
        "legacy_new_loan_vs_apply": ratio("legacy_new_loan", "apply"),
        "p99_ms_max": worst[0],
        "p99_ms_max_scenario": worst[1],
        "scale_ratio": scale.get("list_p50_ratio") if scale.get("available") else None,
        "customer_scale_ratio": (
            scale.get("customer_list_p50_ratio") if scale.get("available") else None
        ),
        "deep_page_ratio": deep.get("p50_ratio"),
        "healthz_p99_ms": _p99(resp.get("healthz")),
        "get_p99_during_logins_ms": _p99(resp.get("get_one")),
        "repay_vs_apply": ratio("repay", "apply"),
        "repay_p99_ms": _p99(_c16(results, "repay")),
        "statement_p99_ms": _p99(_c16(results, "statement")),
        "statement_scale_ratio": (
            scale.get("statement_p50_ratio") if scale.get("available") else None
        ),
        "portfolio_p50_ms": _p50_c1(results, "portfolio"),
        **cob_ratios(results.get("cob") or {}),
        **event_ratios(results.get("events") or {}),
    }


def event_ratios(events: dict[str, Any]) -> dict[str, Any]:
    """Events: each write's req/s with two active endpoints over the same without (measured
    one after the other), the lower of apply's and approve's; the delivery lag's p99."""
    pairs = [
        (events.get("with", {}).get(name), events.get("without", {}).get(name))
        for name in ("apply", "approve")
    ]
    shares = [w["rps"] / o["rps"] for w, o in pairs if w and o and o["rps"]]
    return {
        "events_write_ratio": round(min(shares), 2) if len(shares) == 2 else None,
        "delivery_lag_p99_ms": (events.get("lag") or {}).get("p99_ms"),
    }


def _p50_c1(results: dict[str, Any], name: str) -> float | None:
    run = (results["scenarios"].get(name) or {}).get("levels", {}).get("1")
    if not run:
        return None
    return run["p50_ms"] if run["requests"] else math.inf


def cob_ratios(cob: dict[str, Any]) -> dict[str, Any]:
    """Close of business: the first run's wall time (the process, as the nightly job takes it);
    its run (from its progress bar: the batches, without the interpreter's start) over the
    floor's UPDATE, the rerun's over the first's; seconds per loan on the bigger database over
    the smaller; get-one p99 during a run; the peak RSS of the runs."""
    first, rerun = cob.get("first") or {}, cob.get("rerun") or {}
    floor = cob.get("floor") or {}
    ok = bool(first.get("ok"))
    runs = [r for r in (first, rerun, (cob.get("under_load") or {}).get("cob") or {}) if r]
    under = (cob.get("under_load") or {}).get("load")
    return {
        "cob_seconds": first.get("wall_s") if ok else (math.inf if first else None),
        "cob_vs_floor": (
            round(first["run_s"] / floor["seconds"], 2) if ok and floor.get("seconds") else None
        ),
        "cob_rerun_ratio": (
            round(rerun["run_s"] / first["run_s"], 3) if ok and rerun.get("ok") else None
        ),
        "cob_scale_ratio": (cob.get("scale") or {}).get("ratio"),
        "cob_get_p99_ms": _p99(under) if ok else None,
        "cob_peak_rss_mb": max((r["peak_rss_mb"] for r in runs), default=None),
    }


# Judged in full runs only: on 10,000 loans close of business takes two batches, and the first
# (statements prepared, caches cold) is most of the time, so its ratio to the floor is noise.
FULL_ONLY = {"cob_vs_floor"}


def verdict(name: str, value: Any, mode: str = "full") -> str:
    if value is None:
        return "n/a"
    if name in FULL_ONLY and mode != "full":
        return "not judged (quick)"
    op, bound, _ = TARGETS[name]
    ok = {">=": value >= bound, "<": value < bound, "<=": value <= bound}[op]
    return "ok" if ok else "MISSED"


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def scenario_table(results: dict[str, Any]) -> str:
    levels = [str(c) for c in results["meta"]["levels"]]
    head = ["scenario"] + [f"c{c} {k}" for c in levels for k in ("req/s", "p50 ms", "p99 ms")]
    head.append("non-2xx / errors")
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    names = [n for n in ORDER if n in results["scenarios"]]
    names += [n for n in results["scenarios"] if n not in names]
    for name in names:
        s = results["scenarios"][name]
        cells = [name + (" (!)" if s["flagged"] else "")]
        bad = []
        for c in levels:
            r = s["levels"].get(c)
            if r is None:
                cells += ["", "", ""]
                continue
            cells += [_fmt(r["rps"]), _fmt(r["p50_ms"], 2), _fmt(r["p99_ms"], 2)]
            if r["non2xx"] or r["errors"]:
                bad.append(f"c{c}: {r['non2xx']}/{r['errors']}")
        cells.append(", ".join(bad) or "0")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def targets_table(results: dict[str, Any]) -> str:
    r = results.get("ratios") or ratios(results)
    rows = ["| measure | value | target | verdict |", "|---|---|---|---|"]
    for name, (op, bound, what) in TARGETS.items():
        value = r.get(name)
        shown = _fmt(value, 2)
        if name == "p99_ms_max" and r.get("p99_ms_max_scenario"):
            shown += f" ({r['p99_ms_max_scenario']})"
        judged = verdict(name, value, results["meta"]["mode"])
        rows.append(f"| {name}: {what} | {shown} | {op} {bound} | {judged} |")
    return "\n".join(rows)


def extras(results: dict[str, Any]) -> str:
    lines = []
    deep = results.get("deep_page") or {}
    if deep.get("first"):
        lines.append(
            f"- Deep page: page {deep['page']} of `/api/v1/admin/loans?limit=50` p50 "
            f"{deep['deep']['p50_ms']} ms vs first page {deep['first']['p50_ms']} ms "
            f"(ratio {deep['p50_ratio']}), c16."
        )
    scale = results.get("scale") or {}
    if scale.get("available"):
        for key, label in (
            ("admin_list", "filtered list"),
            ("customer_list", "customer list"),
            ("statement", "statement"),
        ):
            if key not in scale["10k"] or key not in scale["1m"]:
                continue
            a, b = scale["10k"][key], scale["1m"][key]
            lines.append(
                f"- Scale, {label} (c16): 10k p50/p99 {a['p50_ms']}/{a['p99_ms']} ms, "
                f"1M p50/p99 {b['p50_ms']}/{b['p99_ms']} ms."
            )
    else:
        lines.append("- Scale: n/a (no 1,000,000-loan database yet: `make bench-full`).")
    resp = results.get("responsiveness") or {}
    if resp:
        alone, during = resp["alone"], resp["during_login_storm"]
        lines.append(
            f"- Responsiveness ({resp['probe_rate_per_s']} req/s probes): /healthz p99 "
            f"{alone['healthz']['p99_ms']} ms alone, {during['healthz']['p99_ms']} ms during "
            f"the login storm; get-one p99 {alone['get_one']['p99_ms']} ms alone, "
            f"{during['get_one']['p99_ms']} ms during it ({during['healthz']['requests']} and "
            f"{during['get_one']['requests']} probe answers; storm: {resp['storm']['rps']} "
            f"logins/s, p50 {resp['storm']['p50_ms']} ms)."
        )
    plans = [("", results.get("explain") or {})]
    plans += [(f" ({k[8:]})", v) for k, v in scale.items() if k.startswith("explain_")]
    for where, explained in plans:
        for name, plan in explained.items():
            lines.append(
                f"- EXPLAIN {name}{where}: {'ok' if plan['ok'] else '**FLAG**'}, {plan['verdict']}"
            )
    for name, prof in (results.get("profile") or {}).items():
        if not prof:
            continue
        packages = ", ".join(f"{k} {v}%" for k, v in prof["self_by_package"][:8])
        frames = "; ".join(f"{k} {v}%" for k, v in prof["top_inclusive"] if v < 50)
        lines.append(
            f"- py-spy {name} (c16): {prof['gil_ms_per_request']} ms with the GIL held per "
            f"request (= CPU per request on an idle machine; {prof['samples']} samples). "
            f"Self time by package: {packages}. Inclusive (top frames): {frames[:700]}"
        )
    lines += cob_extras(results)
    lines += events_extras(results)
    checks = results.get("checks") or {}
    legacy_sql = results.get("legacy_sql") or {}
    if legacy_sql:
        sizes = legacy_sql.get("loanapi_bytes") or {}
        hundred = (results["meta"].get("legacy_customers_100")) or []
        lines.append(
            f"- Legacy /getloans: the admin's answer {checks.get('legacy_bulk_items')} rows, "
            f"{sizes.get('bulk', 0):,} bytes; customers with about 100 loans: "
            + ", ".join(f"{c['id']} ({c['loans']})" for c in hundred)
            + ". The floor's statements: "
            + ("captured from loanapi." if legacy_sql.get("ok") else "**not captured**: ")
            + "; ".join(legacy_sql.get("problems") or [])
        )
    differ = [k[6:-10] for k, v in checks.items() if k.endswith("_same_json") and v is False]
    if differ:
        lines.append(
            f"- **The floor's JSON differed from loanapi's: {', '.join(differ)}** (see checks "
            "in the JSON)."
        )
    flagged = [n for n, s in results["scenarios"].items() if s["flagged"]]
    if flagged:
        lines.append(
            f"- **Scenarios with non-2xx responses or socket errors: "
            f"{', '.join(flagged)}** (numbers of such runs are not valid)."
        )
    return "\n".join(lines)


def events_extras(results: dict[str, Any]) -> list[str]:
    """The events step's line: each write with and without endpoints, and the lag."""
    events = results.get("events") or {}
    if not events.get("with"):
        return []
    runs = ", ".join(
        f"{name} {events['without'][name]['rps']} -> {events['with'][name]['rps']} req/s"
        for name in ("apply", "approve")
    )
    every = events.get("all_rps") or {}
    if every:
        medians = ", ".join(
            f"{name} {statistics.median(every['without'][name]):.1f} -> "
            f"{statistics.median(every['with'][name]):.1f}"
            for name in ("apply", "approve")
        )
        runs += f" (the best of {events.get('rounds')} rounds each; medians {medians})"
    lag = events.get("lag") or {}
    return [
        f"- Events (c16, without -> with two webhook endpoints, a worker delivering): {runs}; "
        f"{lag.get('deliveries')} deliveries of {lag.get('expected')} expected, lag p50 "
        f"{lag.get('p50_ms')} ms, p99 {lag.get('p99_ms')} ms, max {lag.get('max_ms')} ms; the "
        f"queue drained {events.get('drained_s')} s after the last request."
    ]


def cob_extras(results: dict[str, Any]) -> list[str]:
    """The close-of-business and portfolio lines of the report."""
    lines = []
    portfolio = results.get("portfolio") or {}
    if portfolio.get("flows_c1"):
        run = portfolio["flows_c1"]
        lines.append(
            f"- Portfolio of {portfolio['flows_month']} (the seed's last month: its flows) at "
            f"c1: p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms (this month, "
            f"{portfolio['month']}: the `portfolio` scenario)."
        )
    cob = results.get("cob") or {}
    if cob.get("error"):
        lines.append(f"- Close of business: not run ({cob['error']}).")
    first = cob.get("first") or {}
    if first and not first.get("ok"):
        lines.append(
            f"- **Close of business failed** (exit {first.get('returncode')}): "
            f"{(first.get('output_tail') or '')[-200:]!r}"
        )
    elif first:
        floor, book = cob.get("floor") or {}, cob.get("book") or {}
        lines.append(
            f"- Close of business for {cob['day']} (`loanapi cob`) on {first['database']}: "
            f"{first['loans']:,} active loans, {first['late_fees']:,} late fees recorded (the "
            f"first run ever: every fee since disbursement gets its event), "
            f"{first['bucket_changes']:,} bucket changes; {first['run_s']} s "
            f"({first['us_per_loan']} us per loan; wall {first['wall_s']} s with "
            f"{first['startup_s']} s of start-up; CPU {first['cpu_s']} s; peak RSS "
            f"{first['peak_rss_mb']} MB). Floor (one UPDATE of {floor.get('rows', 0):,} rows): "
            f"{floor.get('seconds')} s."
        )
        if first.get("first_part"):
            part = first["first_part"]
            lines.append(
                f"- Close of business, the first {part['loans']:,} loans closed: "
                f"{part['seconds']} s ({1e6 * part['seconds'] / part['loans']:.1f} us per loan; "
                f"{first['us_per_loan']} over the whole run)."
            )
        if book:
            lines.append(
                f"- The book as of {cob['day']}: {book['late']:,} of {book['active']:,} active "
                f"loans late (dpd > 0, {100 * (book['late_share'] or 0):.1f}%); by bucket "
                + ", ".join(f"{k} {v:,}" for k, v in book["by_bucket"].items())
                + "."
            )
    rerun = cob.get("rerun") or {}
    if rerun.get("ok"):
        lines.append(
            f"- Close of business again for {cob['day']}: {rerun['loans']} loans, "
            f"{rerun['run_s']} s (wall {rerun['wall_s']} s)."
        )
    under = cob.get("under_load") or {}
    if under.get("load"):
        ran, during, alone = under["cob"], under["load"], under["alone"]
        lines.append(
            f"- Get-one at c16 while close of business for {cob['day2']} ran "
            f"({ran.get('loans', 0):,} loans, {ran.get('late_fees', 0):,} late fees, "
            f"{ran.get('run_s')} s; wall {ran.get('wall_s')} s): {during['rps']} req/s, p50 "
            f"{during['p50_ms']} ms, p99 {during['p99_ms']} ms over {during['seconds']} s"
            + ("" if during.get("covers_cob") else " (**the load ended before the run did**)")
            + f"; alone: {alone['rps']} req/s, p99 {alone['p99_ms']} ms."
        )
    if cob.get("portfolio_after_cob"):
        run = cob["portfolio_after_cob"]
        lines.append(
            f"- Portfolio right after close of business (every active row rewritten, not yet "
            f"vacuumed), c1: p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms."
        )
    scale = cob.get("scale") or {}
    if scale.get("available"):
        small = scale["small"]
        lines.append(
            f"- Close of business scale: {small['loans']:,} loans on {small['database']} in "
            f"{small['run_s']} s ({small['us_per_loan']} us per loan) vs {first['loans']:,} in "
            f"{first['run_s']} s ({first['us_per_loan']} us): ratio {scale['ratio']}; after "
            f"each run's first batch (statements prepared, caches warm): "
            f"{small.get('steady_us_per_loan')} vs {first.get('steady_us_per_loan')} us per "
            f"loan, ratio {scale.get('steady_ratio', 'n/a')}."
        )
    elif scale:
        lines.append(f"- Close of business scale: n/a ({scale.get('why')}).")
    if cob and cob.get("reset_ok") is False:
        lines.append("- **The loans were not as seeded after close of business** (see the log).")
    return lines


def summary_line(results: dict[str, Any]) -> str:
    r = results.get("ratios") or ratios(results)

    def num(value: Any, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    return (
        f"summary list_vs_floor={num(r['list_vs_floor'], 2)} "
        f"get_vs_floor={num(r['get_vs_floor'], 2)} p99_ms_max={num(r['p99_ms_max'], 1)} "
        f"healthz_p99_ms={num(r['healthz_p99_ms'], 1)} "
        f"scale_ratio={num(r['scale_ratio'], 2)} "
        f"legacy_bulk_vs_floor={num(r.get('legacy_bulk_vs_floor'), 2)} "
        f"legacy_customer_vs_floor={num(r.get('legacy_customer_vs_floor'), 2)} "
        f"legacy_new_loan_vs_apply={num(r.get('legacy_new_loan_vs_apply'), 2)} "
        f"repay_vs_apply={num(r.get('repay_vs_apply'), 2)} "
        f"repay_p99_ms={num(r.get('repay_p99_ms'), 1)} "
        f"statement_p99_ms={num(r.get('statement_p99_ms'), 1)} "
        f"statement_scale_ratio={num(r.get('statement_scale_ratio'), 2)} "
        f"portfolio_p50_ms={num(r.get('portfolio_p50_ms'), 1)} "
        f"cob_vs_floor={num(r.get('cob_vs_floor'), 2)} "
        f"cob_seconds={num(r.get('cob_seconds'), 1)} "
        f"cob_rerun_ratio={num(r.get('cob_rerun_ratio'), 3)} "
        f"cob_scale_ratio={num(r.get('cob_scale_ratio'), 2)} "
        f"cob_get_p99_ms={num(r.get('cob_get_p99_ms'), 1)} "
        f"cob_peak_rss_mb={num(r.get('cob_peak_rss_mb'), 0)} "
        f"events_write_ratio={num(r.get('events_write_ratio'), 2)} "
        f"delivery_lag_p99_ms={num(r.get('delivery_lag_p99_ms'), 0)}"
    )


def header(results: dict[str, Any]) -> str:
    m = results["meta"]
    mach = m["machine"]
    db = m["database"]
    return (
        f"{m['mode']} run {m['timestamp']}: {db['loans']:,} loans ({db['database']}), "
        f"{m['workers']} workers, {m['generator']}, {m['duration_s']} s per measurement "
        f"after {m['warmup_s']} s warm-up; {mach['cores']} cores, {mach['memory_gib']} GiB, "
        f"{mach['cpu_model']}, PostgreSQL {mach.get('postgresql')}; wall "
        f"{m.get('wall_seconds')} s; load average at start "
        f"{' '.join(f'{x:.2f}' for x in mach['loadavg_at_start'])}"
    )


def markdown(results: dict[str, Any]) -> str:
    return "\n\n".join(
        [
            f"_{header(results)}_",
            scenario_table(results),
            targets_table(results),
            extras(results),
            f"`{summary_line(results)}`",
        ]
    )


def text(results: dict[str, Any], results_path: Path | None = None) -> str:
    parts = [
        header(results),
        "",
        scenario_table(results),
        "",
        targets_table(results),
        "",
        extras(results),
    ]
    if results_path:
        parts += ["", f"results: {results_path}"]
    parts += ["", summary_line(results)]
    return "\n".join(parts)


def chart(results: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart", file=sys.stderr)
        return None
    names = [n for n in ORDER if n in results["scenarios"] and n not in FLOORS]
    if not names:  # a run of steps only (--only cob, explain, ...)
        return None
    cols = 3
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 4.2, rows * 3.2), squeeze=False)
    floor_of = FLOOR_OF
    for ax, name in zip(axes.flat, names, strict=False):
        for label, key, style in (("p50", "p50_ms", "-o"), ("p99", "p99_ms", "--o")):
            for scenario, color, suffix in (
                (name, "tab:blue", ""),
                (floor_of.get(name), "tab:gray", " floor"),
            ):
                levels = (
                    (results["scenarios"].get(scenario) or {}).get("levels") if scenario else None
                )
                if not levels:
                    continue
                xs = [int(c) for c in levels if levels[c][key] is not None]
                ax.plot(
                    xs,
                    [levels[c][key] for c in levels if levels[c][key] is not None],
                    style,
                    color=color,
                    label=label + suffix,
                    markersize=3,
                )
        if name not in NOT_IN_P99:
            ax.axhline(100, color="tab:red", linewidth=0.8, linestyle=":", label="p99 target")
        c16 = results["scenarios"][name]["levels"].get("16")
        flag = " (!)" if results["scenarios"][name]["flagged"] else ""
        ax.set_title(
            f"{name}{flag}" + (f": {c16['rps']:,.0f} req/s at c16" if c16 else ""), fontsize=9
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([int(c) for c in results["meta"]["levels"]])
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("concurrency", fontsize=8)
        ax.set_ylabel("latency (ms)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(
        f"loanapi latency vs concurrency ({results['meta']['mode']}, "
        f"{results['meta']['database']['loans']:,} loans, {results['meta']['timestamp']})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def update_doc(runs: dict[str, dict[str, Any]], doc: Path = DOC) -> None:
    text_ = doc.read_text()
    for mode, results in runs.items():
        begin, end = f"<!-- bench:{mode}:begin -->", f"<!-- bench:{mode}:end -->"
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
        if not pattern.search(text_):
            print(f"{doc}: no {begin} marker; skipped", file=sys.stderr)
            continue
        body = (
            f"{begin}\n{markdown(results)}\n\n![latency vs concurrency, {mode}](../bench/"
            f"results/latest-{mode}.png)\n{end}"
        )
        text_ = pattern.sub(lambda _m, body=body: body, text_)
    doc.write_text(text_)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--update-doc", action="store_true", help="rewrite docs/PERFORMANCE.md")
    args = parser.parse_args()
    files = args.files or [
        p for p in (RESULTS / "latest-quick.json", RESULTS / "latest-full.json") if p.exists()
    ]
    if not files:
        raise SystemExit("no results yet: run `make bench`")
    runs = {}
    for path in files:
        results = json.loads(path.read_text())
        runs[results["meta"]["mode"]] = results
        print(text(results, path) + "\n")
    if args.update_doc:
        update_doc(runs)
        print(f"updated {DOC}")


if __name__ == "__main__":
    main()
