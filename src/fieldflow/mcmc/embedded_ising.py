r"""The embedded Ising model of φ⁴'s signs and its cluster step (Brower & Tamayo 1989).

Write φ_x = ε_x |φ_x| with ε_x = sign φ_x. In

    S(φ) = Σ_x [ Σ_μ (φ(x+μ̂) − φ(x))² + s φ(x)² + λ φ(x)⁴ ]

the squares φ_x², φ_x⁴ and the diagonal part of (φ(x+μ̂) − φ(x))² depend on |φ| only, so
at fixed |φ|

    S = const − 2 Σ_⟨xy⟩ |φ_x||φ_y| ε_x ε_y,

one term per nearest-neighbour link ⟨xy⟩ = (x, x+μ̂). The signs thus form an Ising model
e^{−S} ∝ exp(Σ_⟨xy⟩ J_xy ε_x ε_y) with couplings J_xy = 2|φ_x φ_y| ≥ 0 (Brower & Tamayo,
PRL 62 (1989) 1087). Swendsen–Wang bonds a satisfied link (ε_x = ε_y) with probability
p = 1 − e^{−2J_xy} = 1 − e^{−4 φ_x φ_y} and never an unsatisfied one; flipping the signs of
whole clusters of bonded sites then leaves e^{−S} invariant. With L = 2 the two links
(x, x+μ̂) and (x+μ̂, x+2μ̂) = (x+μ̂, x) join the same pair; each is a separate term of S and
gets its own bond.

Connected components of all chains come from one call to
:func:`scipy.sparse.csgraph.connected_components` on a block-diagonal graph whose nodes are
chain·V + site.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

VARIANTS = ("sw", "wolff")


def bond_probability(phi_x: np.ndarray, phi_y: np.ndarray) -> np.ndarray:
    r"""Bond probability p = 1 − e^{−4 φ_x φ_y} for same-sign neighbours, 0 otherwise.

    This is Swendsen–Wang's 1 − e^{−2J} with the embedded coupling J = 2|φ_x φ_y|.
    Broadcasts over its arguments.
    """
    return -np.expm1(-4.0 * np.maximum(phi_x * phi_y, 0.0))


def cluster_labels(phi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    r"""Draw the bonds of every link and label the clusters of all chains at once.

    Args:
        phi: configurations, shape (chain, Lx, Ly), float64.
    Returns:
        cluster label per site, shape (chain, Lx, Ly); labels are unique across chains,
        as the bond graph on nodes chain·V + site is block-diagonal.
    """
    index = np.arange(phi.size).reshape(phi.shape)
    rows, cols = [], []
    for axis in (-2, -1):
        p = bond_probability(phi, np.roll(phi, -1, axis))
        bonded = rng.random(phi.shape) < p
        rows.append(index[bonded])
        cols.append(np.roll(index, -1, axis)[bonded])
    row, col = np.concatenate(rows), np.concatenate(cols)
    graph = csr_matrix((np.ones(row.size, dtype=np.int8), (row, col)), shape=(phi.size,) * 2)
    _, labels = connected_components(graph, directed=False)
    return labels.reshape(phi.shape)


def cluster_step(
    phi: np.ndarray, rng: np.random.Generator, variant: str = "sw"
) -> tuple[np.ndarray, np.ndarray]:
    r"""One embedded-Ising cluster update of the signs of φ at fixed |φ|, every chain.

    ``sw``: every cluster is flipped independently with probability ½ (Swendsen & Wang
    1987). ``wolff``: per chain, the cluster of one uniformly chosen site is flipped
    (Wolff 1989); building all clusters and keeping that one has the same law.

    Args:
        phi: configurations, shape (chain, Lx, Ly), float64.
    Returns:
        (new φ, same shape; fraction of sites flipped per chain, shape (chain,)).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown cluster variant {variant!r}; known: {VARIANTS}")
    labels = cluster_labels(phi, rng)
    n_chains = phi.shape[0]
    per_chain = labels.reshape(n_chains, -1)
    if variant == "sw":
        flip_cluster = rng.random(phi.size) < 0.5
        flip = flip_cluster[per_chain]
    else:
        seeds = rng.integers(per_chain.shape[1], size=n_chains)
        flip = per_chain == per_chain[np.arange(n_chains), seeds][:, None]
    flip = flip.reshape(phi.shape)
    return np.where(flip, -phi, phi), flip.reshape(n_chains, -1).mean(axis=1)
