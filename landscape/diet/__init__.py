"""Data-diet pre-training (Paul et al. 2022): difficulty scores and the subsets they pick."""
from .config import DEFAULT_AT, DEFAULT_RUNS, ScoresConfig
from .scores import DESCRIPTIONS, METHODS, ForgettingCounter, el2n, el2n_scores, grand_scores
from .subset import proportional_counts, select_subset, size_from

__all__ = ["DEFAULT_AT", "DEFAULT_RUNS", "DESCRIPTIONS", "METHODS", "ForgettingCounter", "ScoresConfig",
           "el2n", "el2n_scores", "grand_scores", "proportional_counts", "select_subset", "size_from"]
