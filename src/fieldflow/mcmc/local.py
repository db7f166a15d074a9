r"""Local updates of φ⁴ at fixed neighbours: Metropolis and over-relaxation sweeps.

The terms of S that contain one site φ_x are V(φ_x) + const with
V(φ) = (4+s) φ² + λ φ⁴ − 2 φ Σ_{y nn x} φ_y. Sites of one colour of
:func:`colour_masks` share no link, so a sweep updates them at once, colour by colour,
each change accepted with probability min(1, e^{−ΔS}). They change |φ|, which the cluster
step on the signs never does. Everything in float64 numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def colour_masks(shape: tuple[int, int]) -> list[np.ndarray]:
    r"""Partition of the periodic lattice into sets with no two nearest neighbours.

    Even sizes: the two checkerboard parities. Otherwise a three-colouring
    (c(x) + c(y)) mod 3, where c colours the ring of each direction (c(i) = i mod 2, and
    2 on the last site of an odd ring), so neighbours always differ by 1 or 2 mod 3.

    Returns:
        boolean masks, each of shape ``shape``.
    """

    def ring(n: int) -> np.ndarray:
        c = np.arange(n) % 2
        if n % 2:
            c[-1] = 2
        return c

    lx, ly = shape
    if lx % 2 == 0 and ly % 2 == 0:
        colour = (np.arange(lx)[:, None] + np.arange(ly)[None, :]) % 2
    else:
        colour = (ring(lx)[:, None] + ring(ly)[None, :]) % 3
    return [colour == k for k in np.unique(colour)]


def neighbour_sum(phi: np.ndarray) -> np.ndarray:
    """Σ_{y nn x} φ_y over the four links at x (with multiplicity when L = 2); same shape."""
    return sum(np.roll(phi, shift, axis) for axis in (-2, -1) for shift in (1, -1))


def local_delta_action(
    old: np.ndarray, new: np.ndarray, nn: np.ndarray, s: float, lam: float
) -> np.ndarray:
    r"""ΔS of changing one site φ → φ' with its neighbours held fixed.

    The terms of S that contain φ_x are V(φ_x) + const with
    V(φ) = (4+s) φ² + λ φ⁴ − 2 φ Σ_{y nn x} φ_y, so
    ΔS = (4+s)(φ'² − φ²) + λ(φ'⁴ − φ⁴) − 2(φ' − φ) Σ_nn φ_y. Elementwise.
    """
    old2, new2 = old * old, new * new
    return (4.0 + s) * (new2 - old2) + lam * (new2 * new2 - old2 * old2) - 2.0 * (new - old) * nn


def local_minimum(b: np.ndarray, s: float, lam: float) -> np.ndarray:
    r"""Global minimiser c of V(φ) = (4+s) φ² + λ φ⁴ − b φ, elementwise (b = 2 Σ_nn φ_y).

    V'(c) = 4λc³ + 2(4+s)c − b = 0. By V(−φ; b) = V(φ; −b), c(b) = sign(b) c(|b|), and for
    b ≥ 0 the minimiser is the largest real root of the depressed cubic c³ + pc + q = 0,
    p = (4+s)/(2λ), q = −|b|/(4λ). With D = q²/4 + p³/27 ≥ 0 there is one real root
    (Cardano): c = A − p/(3A), A = ∛(−q/2 + √D); with D < 0 there are three and the largest
    is 2√(−p/3) cos(⅓ arccos((3q/2p)√(−3/p))). At λ = 0, c = b/(2(4+s)). One Newton step
    on V' removes the rounding of the closed forms.
    """
    b = np.asarray(b, dtype=np.float64)
    a = 4.0 + s
    if lam == 0:
        return b / (2.0 * a)
    p, q = a / (2.0 * lam), -np.abs(b) / (4.0 * lam)
    d = 0.25 * q * q + p**3 / 27.0
    cube = np.cbrt(-0.5 * q + np.sqrt(np.maximum(d, 0.0)))
    one_root = cube - np.divide(p, 3.0 * cube, out=np.zeros_like(cube), where=cube > 0)
    if p < 0:
        r = math.sqrt(-p / 3.0)
        cos3 = np.clip(1.5 * q / p * math.sqrt(-3.0 / p), -1.0, 1.0)
        three_roots = 2.0 * r * np.cos(np.arccos(cos3) / 3.0)
        one_root = np.where(d < 0, three_roots, one_root)
    c = np.where(b < 0, -one_root, one_root)
    slope = 4.0 * lam * c**3 + 2.0 * a * c - b
    curvature = 12.0 * lam * c * c + 2.0 * a
    return c - np.divide(slope, curvature, out=np.zeros_like(c), where=curvature > 0)


def _colour_update(
    phi: np.ndarray,
    propose: Callable[[np.ndarray, np.ndarray], np.ndarray],
    s: float,
    lam: float,
    rng: np.random.Generator,
) -> float:
    """Metropolis over each colour in turn, in place; returns the acceptance rate."""
    accepted, total = 0, 0
    for mask in colour_masks(phi.shape[-2:]):
        nn = neighbour_sum(phi)[:, mask]
        old = phi[:, mask]
        new = propose(old, nn)
        accept = local_delta_action(old, new, nn, s, lam) < rng.standard_exponential(old.shape)
        phi[:, mask] = np.where(accept, new, old)
        accepted += int(accept.sum())
        total += accept.size
    return accepted / total


def local_sweep(
    phi: np.ndarray, s: float, lam: float, delta: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    r"""One checkerboard Metropolis sweep, φ'_x = φ_x + δ U(−1, 1), accepted w.p. min(1, e^{−ΔS}).

    Sites of one colour have no common links, so they are updated at once with the local
    ΔS of :func:`local_delta_action`.

    Args:
        phi: configurations, shape (chain, Lx, Ly), float64 (not modified).
    Returns:
        (new φ, acceptance rate over all sites and chains).
    """
    phi = phi.copy()

    def propose(old: np.ndarray, nn: np.ndarray) -> np.ndarray:
        return old + delta * rng.uniform(-1.0, 1.0, old.shape)

    return phi, _colour_update(phi, propose, s, lam, rng)


def overrelax_sweep(
    phi: np.ndarray, s: float, lam: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    r"""One checkerboard sweep of reflections φ' = 2c − φ about c = :func:`local_minimum`.

    c depends only on the neighbours, so the reflection is a deterministic involution
    with unit Jacobian, i.e. a symmetric proposal; it is accepted with min(1, e^{−ΔS}).
    At λ = 0 V is symmetric about c and ΔS = 0 (microcanonical over-relaxation).

    Args:
        phi: configurations, shape (chain, Lx, Ly), float64 (not modified).
    Returns:
        (new φ, acceptance rate).
    """
    phi = phi.copy()

    def propose(old: np.ndarray, nn: np.ndarray) -> np.ndarray:
        return 2.0 * local_minimum(2.0 * nn, s, lam) - old

    return phi, _colour_update(phi, propose, s, lam, rng)
