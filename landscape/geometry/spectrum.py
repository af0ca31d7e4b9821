"""Curvature from Hessian-vector products: top-k eigenpairs, the trace, the spectral density.

All three take a `HessianOperator` (or anything with `mm`, `dim`, `size`, `project` and
`rademacher`) and work in float64 on flat vectors, whatever the network's dtype.

* `lanczos_top`: Lanczos with full reorthogonalisation (every new vector is orthogonalised twice
  against all earlier ones, so no ghost copies of converged eigenvalues appear); the top-k Ritz
  pairs of the tridiagonal matrix. With as many steps as surviving weights it is exact.
* `power_top`: power iteration with deflation (PyHessian's method), k times; it finds the
  eigenvalues of largest magnitude, which for a trained network are the largest ones.
* `hutchinson_trace`: tr(H) ≈ mean of vᵀHv over Rademacher probes v, with the standard error of
  that mean (Hutchinson 1989; Yao et al. 2020 use it in PyHessian).
* `slq_density`: stochastic Lanczos quadrature (Ubaru et al. 2017; Ghorbani et al. 2019): from
  each unit-norm probe, m Lanczos steps give nodes θ_j (Ritz values) and weights τ_j (squared first
  components of the Ritz vectors); the density is their average, a sum of weighted spikes that
  integrates to 1 and, per probe, reproduces vᵀHᵖv/vᵀv exactly for p < 2m.

Probes are drawn from seeded CPU generators, so every estimate is reproducible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import ConfigError
from .hvp import HessianOperator, layer_blocks

EIGEN_METHODS = ("lanczos", "power")
Progress = Callable[[int, int], None]


@dataclass
class Eigen:
    values: torch.Tensor          # [k] float64, largest first
    vectors: torch.Tensor | None  # [k, size] float64 unit vectors (zero on pruned weights)
    steps: int                    # Lanczos steps, or power iterations in all
    residuals: torch.Tensor       # [k] ‖Hv − λv‖ of each returned pair


@dataclass
class Trace:
    estimate: float
    stderr: float
    samples: torch.Tensor  # [probes] vᵀHv of each probe
    dim: int

    @property
    def mean_eigenvalue(self) -> float:
        return self.estimate / self.dim


@dataclass
class Density:
    nodes: torch.Tensor    # [probes, m] Ritz values per probe (NaN past a breakdown)
    weights: torch.Tensor  # [probes, m] their quadrature weights (0 past a breakdown); rows sum to 1
    dim: int
    grid: torch.Tensor = field(default_factory=lambda: torch.empty(0))     # eigenvalue axis
    smoothed: torch.Tensor = field(default_factory=lambda: torch.empty(0))  # Gaussian-smoothed density on it
    sigma: float = 0.0

    def moment(self, p: int) -> torch.Tensor:
        """Per probe, Σ τ_j θ_jᵖ: an estimate of tr(Hᵖ)/n."""
        return (self.weights * torch.nan_to_num(self.nodes) ** p).sum(1)


def lanczos(op, starts: torch.Tensor, steps: int, stop: Callable[[torch.Tensor, torch.Tensor, int], bool] | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """`steps` Lanczos steps from each row of `starts` [p, size] at once (independent runs).

    Returns (alpha [p, m], beta [p, m-1], basis [p, m, size], length [p]): the tridiagonal
    entries and the orthonormal Krylov basis; a run whose Krylov space is exhausted (β ≈ 0)
    stops there and `length` says where. `stop(alpha, beta, m)`, asked after each step, ends every
    run after m steps when it returns True (a convergence test).
    """
    p, size = starts.shape
    basis = torch.zeros(p, steps, size, dtype=torch.float64, device=starts.device)
    alpha = torch.zeros(p, steps, dtype=torch.float64, device=starts.device)
    beta = torch.zeros(p, max(steps - 1, 0), dtype=torch.float64, device=starts.device)
    length = torch.full((p,), steps, dtype=torch.long)
    q = op.project(starts.double())
    q = q / q.norm(dim=1, keepdim=True)
    alive = torch.ones(p, dtype=torch.bool, device=starts.device)
    scale = torch.zeros(p, dtype=torch.float64, device=starts.device)
    for j in range(steps):
        basis[:, j] = q
        w = op.mm(q)
        alpha[:, j] = (w * q).sum(1)
        # Full reorthogonalisation, twice ("twice is enough", Parlett): w ⟂ every earlier vector.
        for _ in range(2):
            w = w - torch.einsum("pm,pms->ps", torch.einsum("pms,ps->pm", basis[:, :j + 1], w), basis[:, :j + 1])
        w = op.project(w)
        if j == steps - 1:
            break
        if stop is not None and stop(alpha, beta, j + 1):
            length.clamp_(max=j + 1)
            break
        b = w.norm(dim=1)
        scale = torch.maximum(scale, alpha[:, j].abs() + b)
        broke = alive & (b <= 1e-10 * scale.clamp_min(1e-300))
        for i in torch.nonzero(broke).flatten().tolist():
            length[i] = j + 1
        alive &= ~broke
        if not alive.any():
            break
        beta[:, j] = torch.where(alive, b, torch.zeros_like(b))
        q = torch.where(alive[:, None], w / b.clamp_min(1e-300)[:, None], torch.zeros_like(w))
    return alpha, beta, basis, length


def _ritz(alpha: torch.Tensor, beta: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors of the m×m tridiagonal matrix."""
    t = torch.diag(alpha[:m]) + torch.diag(beta[:m - 1], 1) + torch.diag(beta[:m - 1], -1)
    return torch.linalg.eigh(t)


def _check_k(op, k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"--top-k {k!r} must be a positive integer")
    if k > op.dim:
        raise ConfigError(f"--top-k {k} is more than the {op.dim} weights the Hessian is over",
                          f"ask for at most {op.dim}")
    return k


def lanczos_top(op, k: int = 1, *, steps: int = 100, tol: float | None = None,
                generator: torch.Generator | None = None, vectors: bool = True) -> Eigen:
    """The k largest eigenvalues of the operator (and unit eigenvectors), by Lanczos.

    At most `steps` steps; with `tol`, stop as soon as a step changes none of the top-k Ritz values
    by more than tol relatively (Ritz values of the largest eigenvalues only grow towards them, so
    a step that barely moves them has all but converged)."""
    k = _check_k(op, k)
    m = min(op.dim, max(steps, 2 * k + 1))
    start = op.rademacher(1, generator or torch.Generator().manual_seed(0))
    previous: list[torch.Tensor] = []

    def converged(alpha, beta, j):
        if j < k + 1:
            return False
        top = _ritz(alpha[0], beta[0], j)[0].flip(0)[:k]
        done = bool(previous) and bool(((top - previous[0]).abs() <= tol * top.abs().clamp_min(1e-30)).all())
        previous[:] = [top]
        return done

    alpha, beta, basis, length = lanczos(op, start, m, converged if tol else None)
    m = int(length[0])
    theta, s = _ritz(alpha[0], beta[0], m)
    order = torch.argsort(theta, descending=True)[:min(k, m)]
    values = theta[order]
    vecs = (s[:, order].T @ basis[0, :m])
    residuals = _residuals(op, values, vecs)  # k more products: a bound the caller can check
    return Eigen(values.cpu(), vecs if vectors else None, m, residuals.cpu())


def _residuals(op, values: torch.Tensor, vecs: torch.Tensor) -> torch.Tensor:
    return (op.mm(vecs) - values[:, None] * vecs).norm(dim=1)


def power_top(op, k: int = 1, *, iterations: int = 100, tol: float = 1e-3,
              generator: torch.Generator | None = None, vectors: bool = True) -> Eigen:
    """The k eigenvalues of largest magnitude, by power iteration with deflation (PyHessian's method):
    each new vector is kept orthogonal to the eigenvectors already found; iteration stops when the
    eigenvalue changes by less than `tol` relatively."""
    k = _check_k(op, k)
    gen = generator or torch.Generator().manual_seed(0)
    found: list[torch.Tensor] = []
    values: list[float] = []
    total = 0
    for _ in range(k):
        v = op.rademacher(1, gen)[0]
        v = v / v.norm()
        value = None
        for _ in range(iterations):
            for u in found:
                v = v - (u @ v) * u
            v = v / v.norm()
            hv = op.mv(v)
            total += 1
            new = float(v @ hv)
            v = hv
            if value is not None and abs(new - value) <= tol * (abs(value) + 1e-12):
                value = new
                break
            value = new
        for u in found:
            v = v - (u @ v) * u
        found.append(v / v.norm())
        values.append(value)
    vecs = torch.stack(found)
    vals = torch.tensor(values, dtype=torch.float64)
    order = torch.argsort(vals, descending=True)
    vals, vecs = vals[order], vecs[order]
    return Eigen(vals, vecs if vectors else None, total, _residuals(op, vals.to(vecs.device), vecs).cpu())


DEFAULT_TOL = {"lanczos": 1e-6, "power": 1e-3}  # power: PyHessian's default


def top_eigen(op, k: int = 1, *, method: str = "lanczos", steps: int = 100, tol: float | None = None,
              generator=None, vectors: bool = True) -> Eigen:
    """Lanczos (stopping when no top-k Ritz value moves by more than tol relatively) or power
    iteration with deflation (stopping when the eigenvalue does); tol None: DEFAULT_TOL[method]."""
    if method not in EIGEN_METHODS:
        raise ConfigError(f"unknown eigenvalue method {method!r}", f"choose {' or '.join(EIGEN_METHODS)}")
    tol = DEFAULT_TOL[method] if tol is None else tol
    if method == "power":
        return power_top(op, k, iterations=steps, tol=tol, generator=generator, vectors=vectors)
    return lanczos_top(op, k, steps=steps, tol=tol, generator=generator, vectors=vectors)


def hutchinson_trace(op, probes: int = 100, *, generator: torch.Generator | None = None,
                     chunk: int = 8, progress: Progress | None = None) -> Trace:
    """tr(P·H·P) ≈ mean of vᵀHv over `probes` Rademacher vectors, with its standard error.

    `chunk` probes share one vmapped pass over the data."""
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 2:
        raise ConfigError(f"--probes {probes!r}: the trace needs at least 2 probes for a standard error")
    gen = generator or torch.Generator().manual_seed(0)
    samples = []
    for start in range(0, probes, chunk):
        v = op.rademacher(min(chunk, probes - start), gen)
        samples.append((v * op.mm(v)).sum(1).cpu())
        if progress:
            progress(start + len(v), probes)
    s = torch.cat(samples)
    return Trace(float(s.mean()), float(s.std(unbiased=True) / math.sqrt(len(s))), s, op.dim)


def slq_density(op, probes: int = 8, steps: int = 60, *, generator: torch.Generator | None = None,
                chunk: int = 8, bins: int = 400, sigma: float | None = None) -> Density:
    """The spectral density by stochastic Lanczos quadrature with full reorthogonalisation.

    `probes` unit Rademacher probes, `steps` Lanczos steps each (at most the dimension); the
    smoothed density puts a Gaussian of width `sigma` (default 1% of the spectrum's range) on
    every node, on `bins` points spanning the nodes."""
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise ConfigError(f"--density-probes {probes!r} must be a positive integer")
    gen = generator or torch.Generator().manual_seed(0)
    m = min(op.dim, steps)
    nodes, weights = [], []
    for start in range(0, probes, chunk):
        v = op.rademacher(min(chunk, probes - start), gen)
        alpha, beta, _, length = lanczos(op, v, m)
        for i in range(len(v)):
            theta, s = _ritz(alpha[i], beta[i], int(length[i]))
            node = torch.full((m,), float("nan"), dtype=torch.float64)
            weight = torch.zeros(m, dtype=torch.float64)
            node[:len(theta)], weight[:len(theta)] = theta.cpu(), (s[0] ** 2).cpu()
            nodes.append(node)
            weights.append(weight)
    density = Density(torch.stack(nodes), torch.stack(weights), op.dim)
    return smooth(density, bins, sigma)


def smooth(density: Density, bins: int = 400, sigma: float | None = None) -> Density:
    finite = density.nodes[torch.isfinite(density.nodes)]
    lo, hi = float(finite.min()), float(finite.max())
    width = max(hi - lo, 1e-12 * max(abs(lo), abs(hi), 1.0))
    sigma = sigma if sigma is not None else 0.01 * width
    pad = 5 * sigma
    grid = torch.linspace(lo - pad, hi + pad, bins, dtype=torch.float64)
    gauss = torch.exp(-0.5 * ((grid[:, None] - torch.nan_to_num(density.nodes.flatten())[None]) / sigma) ** 2)
    gauss = gauss / (sigma * math.sqrt(2 * math.pi))
    smoothed = (gauss * density.weights.flatten()[None]).sum(1) / len(density.nodes)
    density.grid, density.smoothed, density.sigma = grid, smoothed, sigma
    return density


def per_layer(model, state, x, y, *, mask=None, batch_size: int = 1000, k: int = 1, method: str = "lanczos",
              steps: int = 100, probes: int = 100, seed_generator: Callable[[int], torch.Generator],
              names: list[str] | None = None) -> dict[str, dict]:
    """Top-k eigenvalues and the trace of each layer's diagonal block of the Hessian.

    A block is one module's parameters (its weight and bias); its Hessian differentiates only
    them, holding every other weight fixed. `seed_generator(i)` gives the generator of block i.
    """
    out: dict[str, dict] = {}
    for i, (layer, params) in enumerate(layer_blocks(model, names).items()):
        op = HessianOperator(model, state, x, y, names=params, mask=mask, batch_size=batch_size)
        if op.dim == 0:
            continue
        eig = top_eigen(op, min(k, op.dim), method=method, steps=steps, generator=seed_generator(2 * i),
                        vectors=False)
        trace = hutchinson_trace(op, probes, generator=seed_generator(2 * i + 1))
        out[layer] = {"params": params, "dim": op.dim, "eigenvalues": eig.values, "trace": trace.estimate,
                      "trace_stderr": trace.stderr}
    return out
