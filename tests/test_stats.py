"""The statistics of /api/results against figures worked out by hand
(eval/evaluation/stats.py, results_pairwise.py). No database."""

import math
import time

import numpy as np
import pytest

from eval.evaluation.results import pairwise as results_pairwise
from eval.evaluation.results import stats


def test_mean_with_a_t_interval():
    # 3, 4, 5: mean 4, sample sd 1, t(0.975, 2) = 4.3027 -> 4 +- 4.3027 / sqrt(3) = 4 +- 2.48417
    mean, low, high = stats.mean_interval(3, 12, 9 + 16 + 25)
    assert mean == 4
    assert low == pytest.approx(1.51583, abs=1e-5) and high == pytest.approx(6.48417, abs=1e-5)


def test_a_mean_of_one_value_has_no_interval_and_of_none_no_mean():
    assert stats.mean_interval(1, 5, 25) == (5, None, None)
    assert stats.mean_interval(0, 0, 0) == (None, None, None)


def test_t_quantiles_from_the_table_and_beyond_it():
    assert stats.t975(1) == 12.7062 and stats.t975(30) == 2.0423
    # the tables' 2.0211 (40), 2.0003 (60), 1.9799 (120): the expansion agrees to 1e-4
    assert stats.t975(40) == pytest.approx(2.0211, abs=1e-4)
    assert stats.t975(60) == pytest.approx(2.0003, abs=1e-4)
    assert stats.t975(120) == pytest.approx(1.9799, abs=1e-4)


def test_wilson_intervals():
    # 8 of 10, z = 1.96: centre (0.8 + z^2/20) / (1 + z^2/10) = 0.71674,
    # half z / (1 + z^2/10) * sqrt(0.016 + z^2/400) = 0.22658
    rate, low, high = stats.wilson(8, 10)
    assert rate == 0.8
    assert low == pytest.approx(0.49016, abs=1e-5) and high == pytest.approx(0.94332, abs=1e-5)
    # 0 of 10: from 0 to z^2 / (10 + z^2) = 0.27753
    assert stats.wilson(0, 10) == (0.0, 0.0, pytest.approx(0.27753, abs=1e-5))
    assert stats.wilson(0, 0) == (None, None, None)


def test_cohens_kappa():
    # 50 items: both yes 20, yes/no 5, no/yes 10, both no 15. Observed 35/50 = 0.7;
    # chance 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa (0.7 - 0.5) / (1 - 0.5) = 0.4
    confusion = {("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15}
    assert stats.kappa(confusion) == (pytest.approx(0.4), 50)
    assert stats.kappa({("tie", "tie"): 3}) == (None, 3)  # chance agreement is already 1
    assert stats.kappa({}) == (None, 0)


# A three-model round robin made to fit strengths 4 : 2 : 1 exactly. The
# maximum-likelihood equations are wins_i = sum_j n_ij p_i / (p_i + p_j); with
# 15 games a pair and wins 10:5 (A-B, 9 wins, 4 losses and 2 ties), 12:3 (A-C),
# 10:5 (B-C): A 22 = 15*4/6 + 15*4/5, B 15 = 15*2/6 + 15*2/3, C 8 = 15*1/5 + 15*1/3.
# So p = (4, 2, 1); Elo 400 log10 p = (240.824, 120.412, 0), centred on 1000:
ROUND_ROBIN = [(0, 1, 9, 4, 2), (0, 2, 12, 3, 0), (1, 2, 10, 5, 0)]
EXPECTED_ELO = [1000 + 400 * math.log10(2), 1000, 1000 - 400 * math.log10(2)]  # 1120.412, 1000, 879.588


def test_bradley_terry_on_a_round_robin():
    wins = stats.win_matrix(3, ROUND_ROBIN)
    assert stats.elo(stats.fit_bradley_terry(wins, prior=0)) == pytest.approx(EXPECTED_ELO, abs=1e-6)
    # the default virtual tie moves it by about 0.1 Elo
    assert stats.elo(stats.fit_bradley_terry(wins)) == pytest.approx(EXPECTED_ELO, abs=0.2)


def test_a_segment_counts_ties_half_and_leaves_both_bad_out():
    index = {("echo", "a"): 0, ("echo", "b"): 1, ("echo", "c"): 2}
    rows = [
        ("", False, "echo", "a", "echo", "b", "a", 9),
        ("", False, "echo", "b", "echo", "a", "a", 4),  # b over a, stored the other way round
        ("", False, "echo", "a", "echo", "b", "tie", 2),
        ("", False, "echo", "a", "echo", "b", "both_bad", 7),
        ("", False, "echo", "a", "echo", "c", "a", 12),
        ("", False, "echo", "a", "echo", "c", "b", 3),
        ("", False, "echo", "b", "echo", "c", "a", 10),
        ("", False, "echo", "c", "echo", "b", "a", 5),
        ("", False, "echo", "a", "echo", "a", "a", 50),  # a model against itself: left out
        ("", True, "echo", "a", "echo", "b", "b", 99),  # another segment
    ]
    figures = results_pairwise.segment_figures(index, rows, ("", False))
    a, b, c = figures["rows"]
    assert (a["wins"], a["losses"], a["ties"], a["both_bad"], a["games"]) == (21, 7, 2, 7, 37)
    assert [row["rating"]["elo"] for row in figures["rows"]] == pytest.approx(EXPECTED_ELO, abs=0.2)
    assert a["rating"]["low"] < a["rating"]["elo"] < a["rating"]["high"]
    assert figures["win_rate"]["rates"][0] == [None, 10 / 15, 12 / 15]
    assert figures["win_rate"]["games"][0] == [0, 15, 15]


def test_the_bootstrap_is_reproducible_by_seed():
    first = stats.bootstrap_elo(3, ROUND_ROBIN)
    again = stats.bootstrap_elo(3, ROUND_ROBIN)
    other = stats.bootstrap_elo(3, ROUND_ROBIN, seed=stats.BOOTSTRAP_SEED + 1)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])
    assert np.all(first[0] < EXPECTED_ELO) and np.all(np.array(EXPECTED_ELO) < first[1])


def test_the_bootstrap_interval_covers_the_true_rating_about_95_percent_of_the_time():
    """200 datasets drawn from known strengths (4 models, 40 games a pair, no
    ties): each model's 95% interval should hold its true rating in roughly
    90-99% of them (800 intervals)."""
    started = time.monotonic()
    true_elo = np.array([1150.0, 1050.0, 950.0, 850.0])
    true_elo += 1000 - true_elo.mean()
    theta = (true_elo - 1000) / stats.ELO_SCALE
    rng = np.random.default_rng(7)
    covered = 0
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    for dataset in range(200):
        games = []
        for i, j in pairs:
            won = int(rng.binomial(40, 1 / (1 + math.exp(theta[j] - theta[i]))))
            games.append((i, j, won, 40 - won, 0))
        low, high = stats.bootstrap_elo(4, games, seed=dataset)
        covered += int(np.sum((low <= true_elo) & (true_elo <= high)))
    assert 0.90 <= covered / 800 <= 0.99, covered / 800
    assert time.monotonic() - started < 60  # about 6 s here; a bound for a busy box, not a speed test


def test_a_mean_interval_stays_on_the_answers_scale():
    # Answers 1, 1, 2 on a 1-5 scale: t's interval reaches below 1 unclipped.
    mean, low, high = stats.mean_interval(3, 4.0, 6.0)
    assert low < 1
    clipped = stats.mean_interval(3, 4.0, 6.0, within=(1, 5))
    assert clipped[0] == mean and clipped[1] == 1 and clipped[2] == high


def test_rows_never_compared_are_in_separate_groups():
    """Two models compared only with each other, two others likewise: their ratings
    share no scale, and say so; one linked set has no groups at all."""
    counts = {(0, 1): [5, 3, 0, 0], (2, 3): [2, 6, 1, 0]}
    found = results_pairwise.ratings(4, counts)
    assert [found[n]["group"] for n in range(4)] == [1, 1, 2, 2]
    counts[(1, 2)] = [1, 1, 0, 0]  # one game links them
    assert {found["group"] for found in results_pairwise.ratings(4, counts).values()} == {None}
    assert results_pairwise.linked_groups(5, [(0, 4), (2, 3)]) == [1, 2, 3, 3, 1]
