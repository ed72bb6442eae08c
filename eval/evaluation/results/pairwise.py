"""Pairwise figures of one segment of ``/api/results``: each row's wins,
losses, ties and both-bad, its Bradley-Terry rating with a bootstrap
interval, and the win-rate matrix, from the aggregated pair counts
(results_sql.PAIRS). A verdict between two outputs of the same row (a model
against itself) says nothing about the row and is left out."""

import numpy as np

from eval.evaluation.results import stats

VERDICT_SIDES = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}


def pair_counts(index, pairs, segment):
    """{(i, j): [wins_i, wins_j, ties, both_bad]} with i < j, row indices, for one segment."""
    counts = {}
    for judge, blind, a1, a2, b1, b2, verdict, count in pairs:
        if (judge, bool(blind)) != segment:
            continue
        i, j = index.get((a1, a2)), index.get((b1, b2))
        if i is None or j is None or i == j:
            continue
        side = VERDICT_SIDES[verdict]
        if i > j:
            i, j = j, i
            side = {0: 1, 1: 0}.get(side, side)
        counts.setdefault((i, j), [0, 0, 0, 0])[side] += count
    return counts


def segment_figures(index, pairs, segment, rated=None):
    """A segment's rows and win-rate matrix. ``rated``: its ratings by row key
    (segment_ratings, maybe computed beside the remaining queries); computed here when None."""
    k = len(index)
    counts = pair_counts(index, pairs, segment)
    rows = [{"games": 0, "wins": 0, "losses": 0, "ties": 0, "both_bad": 0, "rating": None} for _ in range(k)]
    for (i, j), (wins_i, wins_j, ties, both_bad) in counts.items():
        for row, won, lost in ((rows[i], wins_i, wins_j), (rows[j], wins_j, wins_i)):
            row["games"] += won + lost + ties + both_bad
            row["wins"] += won
            row["losses"] += lost
            row["ties"] += ties
            row["both_bad"] += both_bad
    if rated is None:
        rated = segment_ratings(pairs, segment, order=index.get)
    for key, rating in rated.items():
        rows[index[key]]["rating"] = rating
    return {"rows": rows, "win_rate": win_rate(k, counts)}


def segment_ratings(pairs, segment, order):
    """{row key: rating} of one segment from the pair counts alone (no row list
    needed yet). ``order`` sorts row keys as the rows will be: the bootstrap
    draws in that order, so the same seed gives the same intervals either way."""
    found = {key for _, _, a1, a2, b1, b2, *_ in pairs for key in ((a1, a2), (b1, b2))}
    keys = sorted((key for key in found if order(key) is not None), key=order)
    counts = pair_counts({key: n for n, key in enumerate(keys)}, pairs, segment)
    return {keys[n]: rating for n, rating in ratings(len(keys), counts).items()}


def ratings(k, counts):
    """{row index: {"elo", "low", "high", "group"}} of the rows with a counted game
    (both-bad left out). ``group`` numbers the sets of rows linked by games, directly
    or through others, from 1: ratings of two groups were never compared, so they
    are on separate scales (None while there is one group)."""
    played = sorted({n for pair, c in counts.items() if sum(c[:3]) for n in pair})
    if not played:
        return {}
    local = {n: m for m, n in enumerate(played)}
    games = [(local[i], local[j], c[0], c[1], c[2]) for (i, j), c in sorted(counts.items()) if sum(c[:3])]
    theta = stats.fit_bradley_terry(stats.win_matrix(len(played), games))
    elo = stats.elo(theta)
    low, high = stats.bootstrap_elo(len(played), games, start=theta)
    groups = linked_groups(len(played), games)
    return {
        n: {"elo": float(elo[m]), "low": float(low[m]), "high": float(high[m]), "group": groups[m]}
        for n, m in local.items()
    }


def linked_groups(k, games):
    """Each of ``k`` rows' group number (1, 2, ... in order of first row), rows linked
    by any game; all None when every row is in one group."""
    parent = list(range(k))

    def root(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for i, j, *_ in games:
        parent[root(i)] = root(j)
    numbers = {}
    found = [numbers.setdefault(root(n), len(numbers) + 1) for n in range(k)]
    return [None] * k if len(numbers) == 1 else found


def win_rate(k, counts):
    """``rates[i][j]``: row i's share of its games against row j (ties half; both-bad left out), or None;
    ``games[i][j]``: those games."""
    games = np.zeros((k, k), dtype=int)
    scored = np.zeros((k, k))
    for (i, j), (wins_i, wins_j, ties, _) in counts.items():
        games[i, j] = games[j, i] = wins_i + wins_j + ties
        scored[i, j] = wins_i + ties / 2
        scored[j, i] = wins_j + ties / 2
    rates = [[float(scored[i, j] / games[i, j]) if games[i, j] else None for j in range(k)] for i in range(k)]
    return {"rates": rates, "games": games.tolist()}
