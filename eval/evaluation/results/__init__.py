"""The figures of /api/results: counting in SQL, pairwise ratings, agreement, statistics."""
