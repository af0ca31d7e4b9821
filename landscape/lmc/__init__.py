"""Linear mode connectivity: pure functions on modules and tensors (no files, no CLI).

    curve = interpolation_curve(model, state_a, state_b, x_test, y_test, bn_x=x_train[:10000])
    barrier(curve)["error"]           # Frankle et al.'s instability; < 0.02 is "stable"
    curve = interpolation_curve(..., per_example=True)
    connected_fraction(per_example_barrier(curve), 0.0)   # Paul et al.'s per-example view
    angular_distance(state_a, state_b, model.prunable)

A curve is a path through weight space (interpolate.py) evaluated by a metric (landscape.batched):
the loss-landscape idea of "subspace × metric", here for the one subspace LMC needs, the line
between two networks. Evaluation and BatchNorm recomputation come from `landscape.batched`.
"""
from .barrier import STABILITY_THRESHOLD, barrier, connected_fraction, endpoint_note, per_example_barrier
from .bench import time_interpolation
from .curve import METHODS, Curve, interpolation_curve
from .distances import (angular_distance, disagreement, l2_distance, mask_overlap,
                        normalized_l2_distance)
from .interpolate import LinearPath, alpha_grid

__all__ = [
    "Curve", "interpolation_curve", "METHODS", "LinearPath", "alpha_grid",
    "barrier", "endpoint_note", "per_example_barrier", "connected_fraction", "STABILITY_THRESHOLD",
    "l2_distance", "normalized_l2_distance", "angular_distance", "disagreement", "mask_overlap",
    "time_interpolation",
]
