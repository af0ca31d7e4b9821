"""Loss-landscape geometry around a network: curvature (Hessian spectra) and surfaces.

Pure functions on modules, tensors and masks; no files, no CLI. Five small modules:

* hvp.py        — `HessianOperator`: Hessian-vector products of the mean cross-entropy by
                  torch.func (forward-over-reverse), restricted to a mask and/or a block of layers;
* spectrum.py   — top-k eigenpairs (Lanczos with full reorthogonalisation, or power iteration with
                  deflation), Hutchinson's trace with its standard error, the SLQ spectral density,
                  and all of them per layer;
* directions.py — random directions normalised per filter (Li et al. 2018), the plane through three
                  networks, the PCA plane of a training trajectory;
* surface.py    — loss and error on a 1-D or 2-D grid, many grid points per vmapped pass through
                  landscape.batched, BatchNorm statistics optionally recomputed at each point.
"""
from .directions import (NORMS, Plane, TrajectoryPlane, plane_through, random_direction, trajectory_plane)
from .hvp import HessianOperator, layer_blocks
from .spectrum import (Density, Eigen, Trace, hutchinson_trace, lanczos_top, per_layer, power_top, slq_density,
                       top_eigen)
from .surface import Grid, Surface, grid_axis, surface

__all__ = ["HessianOperator", "layer_blocks", "Eigen", "Trace", "Density", "lanczos_top", "power_top", "top_eigen",
           "hutchinson_trace", "slq_density", "per_layer", "NORMS", "random_direction", "Plane", "plane_through",
           "TrajectoryPlane", "trajectory_plane", "Grid", "Surface", "grid_axis", "surface"]
