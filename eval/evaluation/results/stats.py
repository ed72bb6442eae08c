"""The statistics behind ``/api/results``, on numbers already counted in SQL
(eval/evaluation/results/sql.py): no database here, so each figure can be
checked by hand (tests/test_stats.py).

- A mean's 95% interval is Student's t interval: mean +- t(0.975, n-1) * s / sqrt(n),
  s the sample standard deviation. None below two values.
- A proportion's 95% interval is Wilson's score interval (sensible at 0 and n).
- Cohen's kappa from a confusion table of two raters' labels.
- Bradley-Terry on the Elo scale (400 log10, mean 1000): the maximum-likelihood
  strengths of a win matrix (ties count half to each side; both-bad is left out
  before it gets here), by Newton's method on the log-likelihood, many fits at
  once (numpy, batched) so that the bootstrap costs about as much as one fit.
- The bootstrap resamples the aggregated pair counts: each pair's n games
  are drawn again from the multinomial of its (wins, losses, ties), 1,000
  times from a seeded generator; the interval is the 2.5th and 97.5th
  percentiles of the refitted ratings (a percentile interval).
"""

import math

import numpy as np

Z95 = 1.959963984540054  # the standard normal's 0.975 quantile
# Student's t 0.975 quantiles for 1..30 degrees of freedom (the usual table);
# above 30 the Cornish-Fisher expansion in t_975 agrees with it to 1e-4.
T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
ELO_SCALE = 400 / math.log(10)  # natural-log strengths -> Elo points (400 log10)
ELO_MEAN = 1000
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20250612
# A virtual tie of this many games between every two models: keeps the fit
# finite when a model won (or lost) everything and joins models that never
# met; at 15 real games per pair it moves a rating by about 0.1 Elo.
PRIOR_GAMES = 0.01
MAX_NEWTON_STEPS = 100
MAX_STEP = 2.0  # natural-log units per Newton step: no overshoot on lopsided data


def t975(df):
    """Student's t 0.975 quantile for ``df`` >= 1 degrees of freedom."""
    if df <= len(T975):
        return T975[df - 1]
    z = Z95
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def mean_interval(n, total, total_of_squares, within=None):
    """(mean, low, high) from the count, the sum and the sum of squares (as SQL
    gives them). The interval is None with fewer than two values; ``within``
    (lowest, highest) keeps it on the answers' scale (t's interval at small n
    can reach past it: 1.30 [0.95, 1.65] on a 1-5 scale)."""
    if not n:
        return None, None, None
    mean = total / n
    if n < 2:
        return mean, None, None
    variance = max(total_of_squares - n * mean * mean, 0.0) / (n - 1)
    half = t975(n - 1) * math.sqrt(variance / n)
    low, high = mean - half, mean + half
    if within is not None:
        low, high = max(low, within[0]), min(high, within[1])
    return mean, low, high


def wilson(successes, n, z=Z95):
    """(rate, low, high) with Wilson's score interval; all None when n is 0."""
    if not n:
        return None, None, None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return p, max(centre - half, 0.0), min(centre + half, 1.0)


def kappa(confusion):
    """Cohen's kappa of ``{(label_1, label_2): count}``; (kappa, n). Kappa is
    None when there is nothing to compare or chance agreement is already 1."""
    n = sum(confusion.values())
    if not n:
        return None, 0
    observed = sum(count for (first, second), count in confusion.items() if first == second) / n
    firsts, seconds = {}, {}
    for (first, second), count in confusion.items():
        firsts[first] = firsts.get(first, 0) + count
        seconds[second] = seconds.get(second, 0) + count
    expected = sum(firsts[label] * seconds.get(label, 0) for label in firsts) / (n * n)
    if expected >= 1:
        return None, n
    return (observed - expected) / (1 - expected), n


def fit_bradley_terry(wins, prior=PRIOR_GAMES, start=None):
    """Natural-log strengths (summing to 0) of win matrices ``wins[..., i, j]``
    (i's wins over j, ties already split half and half), one fit per leading
    index. Newton on the log-likelihood plus -(sum of strengths)^2 / 2, which
    pins the free constant without moving the maximum; from ``start`` (the
    point fit, for resamples: 4-5 steps instead of 8-10) or from all equal."""
    wins = np.asarray(wins, dtype=float)
    k = wins.shape[-1]
    wins = wins + prior / 2 * (1 - np.eye(k))
    games = wins + np.swapaxes(wins, -1, -2)
    won = wins.sum(-1)
    theta = np.zeros(wins.shape[:-1]) if start is None else np.broadcast_to(start, wins.shape[:-1]).astype(float)
    diagonal = np.arange(k)
    for _ in range(MAX_NEWTON_STEPS):
        # In place where it can be: 1,000 resamples of 20 models are 400,000 cells a step.
        p = theta[..., None, :] - theta[..., :, None]
        np.exp(p, out=p)
        p += 1
        np.reciprocal(p, out=p)  # p[i, j]: the chance that i beats j
        gradient = won - np.einsum("...ij,...ij->...i", games, p) - theta.sum(-1, keepdims=True)
        hessian = p * p
        np.subtract(p, hessian, out=hessian)
        hessian *= games  # n_ij p_ij (1 - p_ij)
        hessian[..., diagonal, diagonal] -= hessian.sum(-1)
        hessian -= 1
        step = np.linalg.solve(hessian, gradient[..., None])[..., 0]
        largest = np.abs(step).max(-1, keepdims=True)
        step *= np.minimum(1, MAX_STEP / np.maximum(largest, 1e-300))
        theta = theta - step
        if largest.max() < 1e-6:  # quadratic convergence: the step just taken leaves ~1e-12
            break
    return theta - theta.mean(-1, keepdims=True)


def elo(theta):
    return ELO_MEAN + ELO_SCALE * np.asarray(theta)


def win_matrix(k, pairs):
    """The win matrix of ``pairs``: [(i, j, wins_i, wins_j, ties)], ties split half and half."""
    wins = np.zeros((k, k))
    for i, j, wins_i, wins_j, ties in pairs:
        wins[i, j] += wins_i + ties / 2
        wins[j, i] += wins_j + ties / 2
    return wins


def bootstrap_elo(k, pairs, resamples=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED, prior=PRIOR_GAMES, start=None):
    """(low, high) arrays: the 95% percentile interval of each model's Elo over
    ``resamples`` redraws of every pair's games from its own multinomial."""
    merged = {}
    for i, j, *counts in pairs:  # one entry per pair of models, so that the draws below can be assigned
        key, counts = ((i, j), counts) if i < j else ((j, i), [counts[1], counts[0], counts[2]])
        merged[key] = [x + y for x, y in zip(merged.get(key, (0, 0, 0)), counts, strict=True)]
    pairs = [(*key, *counts) for key, counts in merged.items() if sum(counts) > 0]
    rng = np.random.default_rng(seed)
    if not pairs:
        flat = np.full(k, float(ELO_MEAN))
        return flat, flat
    index = np.array([pair[:2] for pair in pairs])
    counts = np.array([pair[2:] for pair in pairs], dtype=float)
    games = counts.sum(1)
    # The multinomial of (wins, losses, ties) as two binomials (ties, then wins among
    # the rest): one vectorised call each, 10x faster than numpy's multinomial per pair.
    ties = rng.binomial(games.astype(np.int64), counts[:, 2] / games, size=(resamples, len(pairs)))
    decisive = counts[:, 0] + counts[:, 1]
    share = np.divide(counts[:, 0], decisive, out=np.zeros_like(decisive), where=decisive > 0)
    won = rng.binomial(games.astype(np.int64) - ties, share)
    wins = np.zeros((resamples, k, k))
    first, second = index[:, 0], index[:, 1]
    wins[:, first, second] = won + ties / 2
    wins[:, second, first] = games - ties - won + ties / 2
    ratings = elo(fit_bradley_terry(wins, prior=prior, start=start))
    low, high = np.percentile(ratings, [2.5, 97.5], axis=0)
    return low, high


def binomial_p_at_least(k, n):
    """P(X >= k) for X ~ Bin(n, 1/2): the one-sided exact binomial (McNemar) p
    that ``k`` of ``n`` discordant pairs going one way is chance. Summed in
    integers (math.comb) and divided once, so it is exact for any n; 1 when
    n is 0, and never above 1."""
    if n <= 0 or k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return min(1.0, _upper_tail(k, n) / 2**n)  # int / int is correctly rounded in Python, however large


def _upper_tail(k, n):
    """sum of C(n, i) for i >= k, in exact integers: walking the shorter side
    (the complement of the lower terms when k is small), each term from the
    last by C(n, i+1) = C(n, i) (n - i) / (i + 1). math.comb per term cost
    0.24 s at n = 2,858; this is a few ms at n = 10,000."""
    if k > n // 2:
        term, tail = math.comb(n, k), 0
        for i in range(k, n + 1):
            tail += term
            term = term * (n - i) // (i + 1)
        return tail
    term, lower = 1, 0
    for i in range(k):
        lower += term
        term = term * (n - i) // (i + 1)
    return 2**n - lower


def holm(p_values):
    """Holm's step-down adjustment of ``p_values`` (a list), in their order:
    the i-th smallest times (m - i), kept non-decreasing, capped at 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [1.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
