"""The replay's HTML report: one self-contained page, plots drawn as inline SVG. Pure.

No JavaScript and no external files, so it opens anywhere, including from a CI artifact.
"""

from __future__ import annotations

import html
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from streamcrm.experiments.lift_html import lift_html
from streamcrm.outcomes import Tally

WIDTH, HEIGHT, PAD = 760, 220, 40


def _grid(top: float, fmt: str) -> list[str]:
    parts = [f'<line x1="{PAD}" y1="{HEIGHT}" x2="{WIDTH - PAD}" y2="{HEIGHT}" stroke="#888"/>']
    for frac in (0.5, 1.0):
        y = HEIGHT - frac * (HEIGHT - PAD)
        parts.append(f'<text x="2" y="{y + 4:.0f}" font-size="10">{format(top * frac, fmt)}</text>')
        parts.append(
            f'<line x1="{PAD}" y1="{y:.0f}" x2="{WIDTH - PAD}" y2="{y:.0f}" stroke="#eee"/>'
        )
    return parts


def _x_labels(xs: list[float], step: float) -> list[str]:
    n = len(xs)
    return [
        f'<text x="{PAD + i * step:.0f}" y="{HEIGHT + 14}" font-size="10">'
        f"{datetime.fromtimestamp(xs[i], UTC).strftime('%m-%d %H:%M')}</text>"
        for i in range(0, n, max(1, -(-n // 7)))  # at most seven labels
    ]


def _figure(title: str, body: list[str], series: dict[str, Any], colors: dict[str, str]) -> str:
    legend = " ".join(
        f'<span style="color:{colors[name]}">&#9632;</span> {html.escape(name)}' for name in series
    )
    svg = (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT + 30}" width="{WIDTH}" role="img">{"".join(body)}</svg>'
    )
    return f"<h2>{html.escape(title)}</h2>{svg}<p class=legend>{legend}</p>"


def _bars(
    title: str, xs: list[float], series: dict[str, list[float]], colors: dict[str, str]
) -> str:
    """Grouped bars per time bucket; a legend names the series."""
    if not xs:
        return f"<h2>{html.escape(title)}</h2><p>No data.</p>"
    top = max((max(values) for values in series.values() if values), default=0.0) or 1.0
    slot = (WIDTH - 2 * PAD) / len(xs)
    bar = max(slot / (len(series) + 1), 1.0)
    parts = _grid(top, ".0f")
    for j, (name, values) in enumerate(series.items()):
        for i, value in enumerate(values):
            h = value / top * (HEIGHT - PAD)
            parts.append(
                f'<rect x="{PAD + i * slot + j * bar:.1f}" y="{HEIGHT - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colors[name]}"><title>{html.escape(name)}: {value:.0f}</title></rect>'
            )
    return _figure(title, parts + _x_labels(xs, slot), series, colors)


def _lines(
    title: str, xs: list[float], series: dict[str, list[float | None]], colors: dict[str, str]
) -> str:
    values = [v for vs in series.values() for v in vs if v is not None]
    if not xs or not values:
        return f"<h2>{html.escape(title)}</h2><p>No offers were evaluated.</p>"
    top = max(values) or 1.0
    step = (WIDTH - 2 * PAD) / max(len(xs) - 1, 1)
    parts = _grid(top, ".1%")
    for name, vs in series.items():
        points = " ".join(
            f"{PAD + i * step:.1f},{HEIGHT - v / top * (HEIGHT - PAD):.1f}"
            for i, v in enumerate(vs)
            if v is not None
        )
        parts.append(
            f'<polyline fill="none" stroke="{colors[name]}" stroke-width="2" points="{points}"/>'
        )
    return _figure(title, parts + _x_labels(xs, step), series, colors)


SERIES = {  # chart name -> (outcome prefix, colour)
    "offers @5": ("model", "#4c78a8"), "recent @5": ("recent", "#54a24b"),
    "cooc @5": ("cooc", "#b279a2"), "popularity @5": ("popular", "#f58518"),
    "popularity (exact) @5": ("popular_exact", "#9d755d"),
}  # fmt: skip


def _hit_rates(xs: list[float], buckets: dict[float, Counter[str]], summary: dict[str, Any]) -> str:
    """Cumulative (prequential) hit rate @5 of the offers and every baseline, and a table."""
    evaluated = 0
    hits = dict.fromkeys(SERIES, 0)
    series: dict[str, list[float | None]] = {name: [] for name in SERIES}
    for x in xs:
        counts = Tally(buckets[x])
        evaluated += counts["nbo_evaluated"]
        for name, (prefix, _) in SERIES.items():
            hits[name] += counts[f"{prefix}_hit_at_5"]
            series[name].append(hits[name] / evaluated if evaluated else None)
    chart = _lines(
        "Offer hit rate vs every baseline (cumulative, on the next cart add or buy)",
        xs, series, {name: colour for name, (_, colour) in SERIES.items()},
    )  # fmt: skip
    return chart + _rates_table(summary)


def _rates_table(summary: dict[str, Any]) -> str:
    def cell(value: Any) -> str:
        return "-" if value is None else html.escape(str(value))

    rows = [("offers (served)", "offer_hit_rate_at_5", "offer_hit_rate_at_10")]
    head = "<tr><th>ranker</th><th>hit@5</th><th>hit@10</th></tr>"
    body = "".join(
        f"<tr><td>{name}</td><td class=num>{cell(summary.get(k5))} {cell(summary.get(k5 + '_ci'))}"
        f"</td><td class=num>{cell(summary.get(k10))} {cell(summary.get(k10 + '_ci'))}</td></tr>"
        for name, k5, k10 in rows
    )
    at5, at10 = (
        summary.get("baseline_hit_rate_at_5") or {},
        summary.get("baseline_hit_rate_at_10") or {},
    )
    body += "".join(
        f"<tr><td>{html.escape(name)}</td><td class=num>{cell(at5.get(name))}</td>"
        f"<td class=num>{cell(at10.get(name))}</td></tr>"
        for name in at5
    )
    body += (
        f"<tr><td>offers / best baseline</td><td class=num>{cell(summary.get('offer_vs_best_baseline'))} "
        f"{cell(summary.get('offer_vs_best_baseline_ci'))}</td><td class=num>"
        f"{cell(summary.get('offer_vs_best_baseline_at_10'))}</td></tr>"
        f"<tr><td>upper bound (target seen at all)</td><td class=num colspan=2>"
        f"{cell(summary.get('offer_hit_rate_upper_bound'))}</td></tr>"
    )
    return (
        f"<p>{summary.get('offers_evaluated', 0)} offers evaluated (95% intervals: bootstrap "
        f"over customers)</p><table>{head}{body}</table>"
    )


def _funnel(summary: dict[str, Any]) -> str:
    steps = [
        ("carts", summary["carts"]),
        ("abandoned", summary["carts_abandoned"]),
        ("reminders sent", summary["reminded"]),
        ("coupons sent", summary["couponed"]),
        ("held out (control)", summary["holdout"]),
        ("recovered after a message", summary["recovered_treated"]),
        ("recovered in holdout", summary["recovered_holdout"]),
        ("recovered, never contacted", summary["recovered_uncontacted"]),
    ]
    top = max(value for _, value in steps) or 1
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td class=num>{value}</td>"
        f'<td><div class=bar style="width:{value / top * 400:.0f}px"></div></td></tr>'
        for name, value in steps
    )
    return f"<h2>Abandonment funnel</h2><table>{rows}</table>"


def render(
    title: str,
    summary: dict[str, Any],
    timeline: dict[float, Counter[str]],
    bucket_s: float = 3600.0,
) -> str:
    # Every hour from first to last, empty ones included: a true time axis.
    first, last = (min(timeline), max(timeline)) if timeline else (0.0, -1.0)
    xs = [first + i * bucket_s for i in range(int((last - first) // bucket_s) + 1)]
    timeline = {x: timeline.get(x, Counter()) for x in xs}

    def col(key: str) -> list[float]:
        return [float(timeline[x][key]) for x in xs]

    # Outcomes are sparse: per day over a long log, per hour over a short one.
    size = 86400.0 if len(xs) * bucket_s > 48 * 3600 else bucket_s
    coarse: dict[float, Counter[str]] = {}
    for x in xs:
        coarse.setdefault(x - x % size, Counter()).update(timeline[x])
    cxs = sorted(coarse)

    def ccol(*keys: str) -> list[float]:
        return [float(sum(coarse[x][k] for k in keys)) for x in cxs]

    unit = {86400.0: "day", 3600.0: "hour"}.get(size, f"{size / 60:.0f} minutes")
    sections = [
        _bars(
            f"Events per {'hour' if bucket_s == 3600 else f'{bucket_s / 60:.0f} minutes'} (event time)",
            xs,
            {"events": col("events")},
            {"events": "#4c78a8"},
        ),
        _funnel(summary),
        lift_html(summary.get("lift") or {}),
        _bars(
            f"Abandoned carts, messages and recoveries per {unit}",
            cxs,
            {
                "abandoned": ccol("cart_abandoned"),
                "coupons/reminders sent": ccol("coupons_issued"),
                "held out": ccol("holdout"),
                "recovered": ccol(
                    "recovered_treated", "recovered_holdout", "recovered_uncontacted"
                ),
            },
            {
                "abandoned": "#e45756",
                "coupons/reminders sent": "#f58518",
                "held out": "#9d9d9d",
                "recovered": "#54a24b",
            },
        ),
        _hit_rates(cxs, coarse, summary),
    ]
    facts = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td class=num>{html.escape(str(v))}</td></tr>"
        for k, v in summary.items()
        if not isinstance(v, dict)
    )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:820px;color:#222}"
        "td{padding:2px 10px}.num{text-align:right;font-variant-numeric:tabular-nums}"
        ".bar{background:#4c78a8;height:12px}.legend{font-size:13px}"
    )
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
        f"{''.join(sections)}<h2>Summary</h2><table>{facts}</table></body></html>"
    )
