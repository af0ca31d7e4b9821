"""Permutation alignment of networks: pure functions on modules, state dicts and masks.

    spec = spec_of(model)                                   # the model's declared permutation groups
    match = weight_matching(spec, state_a, state_b, params, generator=g)
    aligned_b = apply_permutation(state_b, spec, match.perms)
    mask_b = permute_mask(mask_b, spec, match.perms)
    match = activation_matching(spec, model_a, model_b, x_train[:5000])
    curve = repaired_curve(model, state_a, aligned_b, x_test, y_test, repair_x=x_train[:5000])

Specs live with the models (landscape.models.permutation); nothing here knows a model by name.
"""
from ..models.permutation import PermutationSpec, spec_of
from .activations import ActivationMatch, activation_matching
from .permute import apply_permutation, identity, inverse, permute_mask, random_permutation
from .repair import repair_probes, repair_state, repaired_curve
from .weights import WeightMatch, objective, weight_matching

__all__ = ["PermutationSpec", "spec_of", "apply_permutation", "permute_mask", "random_permutation", "identity",
           "inverse", "weight_matching", "WeightMatch", "objective", "activation_matching", "ActivationMatch",
           "repair_probes", "repair_state", "repaired_curve"]
