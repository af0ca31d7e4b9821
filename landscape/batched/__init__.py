"""Batched evaluation: many weight sets per forward pass, and BatchNorm recomputation.

Not about any one experiment: linear mode connectivity (many α), loss surfaces (many grid
points), alignment (REPAIR) and Hessian probes all evaluate one architecture under several
weight sets. Four small modules, used by every measurement:

* states.py    — endpoint state dicts checked against a template, working copies, input checks;
* evaluate.py  — `stacked_forward` (one vmapped `functional_call` over a stacked state),
                 `evaluate_stacked` / `evaluate_module` (loss and correctness, per member);
* chunking.py  — how many members fit in one pass (`auto_alpha_chunk`, `chunks`);
* batchnorm.py — BatchNorm statistics recomputed per member (`recompute_stacked_`).
"""
