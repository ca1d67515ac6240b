"""Uplift readouts on randomised data: intent-to-treat lift, the observed uplift among the
customers a model ranks highest, and a Qini coefficient. Pure.

Observed uplift of a group = treated rate - control rate within it (valid because the arms
were randomised, so within any group picked by pre-treatment features the arms are alike).

Qini coefficient here: the mean, over every cut-off k of the ranking, of the share of the
total incremental outcomes gained by targeting the top k, minus the share k / n that random
targeting would gain. Random targeting gives about 0; a positive value means the ranking puts
responders first. (Radcliffe's Qini curve, g(k) = Y_t(k) - Y_c(k) N_t(k) / N_c(k), scaled by
g(n); the area between it and the diagonal.)

>>> scored = [(0.9, True, True), (0.8, False, False), (0.2, True, False), (0.1, False, True)]
>>> observed_uplift([(t, y) for _, t, y in scored]).estimate
0.0
>>> top_uplift(scored, 0.5).estimate
1.0
>>> good = [(4, True, True), (3, False, False), (2, True, False), (1, False, False)]
>>> qini_coefficient(good), qini_coefficient([(-s, t, y) for s, t, y in good])
(0.375, -0.375)
"""

from __future__ import annotations

from collections.abc import Sequence

from streamcrm.stats.intervals import Interval, newcombe_diff

Scored = tuple[float, bool, bool]  # (predicted uplift, treated, outcome)


def observed_uplift(rows: Sequence[tuple[bool, bool]], level: float = 0.95) -> Interval:
    """Treated rate - control rate with Newcombe's interval; rows are (treated, outcome)."""
    nt = sum(1 for t, _ in rows if t)
    nc = len(rows) - nt
    yt = sum(1 for t, y in rows if t and y)
    yc = sum(1 for t, y in rows if not t and y)
    if nt == 0 or nc == 0:
        msg = f"observed uplift needs both arms (treated {nt}, control {nc})"
        raise ValueError(msg)
    return newcombe_diff(yt, nt, yc, nc, level)


def ranked(scored: Sequence[Scored]) -> list[Scored]:
    return sorted(scored, key=lambda s: -s[0])


def top_uplift(scored: Sequence[Scored], fraction: float) -> Interval:
    """Observed uplift among the top ``fraction`` by predicted uplift."""
    if not 0.0 < fraction <= 1.0:
        msg = f"fraction must be in (0, 1] (got {fraction})"
        raise ValueError(msg)
    top = ranked(scored)[: max(1, int(len(scored) * fraction))]
    return observed_uplift([(t, y) for _, t, y in top])


def qini_coefficient(scored: Sequence[Scored]) -> float:
    rows = ranked(scored)
    n = len(rows)
    nt = nc = yt = yc = 0
    gains = []
    for _, treated, y in rows:
        if treated:
            nt, yt = nt + 1, yt + int(y)
        else:
            nc, yc = nc + 1, yc + int(y)
        gains.append(yt - yc * nt / nc if nc else float(yt))
    total = gains[-1]
    if n == 0 or total == 0:
        msg = "the Qini coefficient needs a non-zero overall uplift"
        raise ValueError(msg)
    return sum(g / total - (k + 1) / n for k, g in enumerate(gains)) / n
