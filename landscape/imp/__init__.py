"""Iterative magnitude pruning with rewinding, its controls, and ticket transfer: the planning.

Everything here is a pure function of configurations, masks and weights: which networks a level
trains, with which mask, from which weights. `landscape.api.imp` runs the plans into the store.
"""
from .config import CONTROLS, ImpConfig, PruneConfig, TicketSource
from .levels import Branch, control_seed, level_branches, next_masks

__all__ = ["CONTROLS", "Branch", "ImpConfig", "PruneConfig", "TicketSource", "control_seed", "level_branches",
           "next_masks"]
