"""The free-energy stage: log Z of every flow ensemble and of the integration paths.

Writes results/tables/free_energy.csv (DESIGN.md §3): one ``flow`` row per flow ensemble,
from its raw proposals, and one ``integration`` row per point with a thermodynamic
integration path, from the MCMC ensembles at the path's nodes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fieldflow import free_energy as fe
from fieldflow import io, reader
from fieldflow.analysis import gamma_estimate, in_updates, pull
from fieldflow.integration import IntegratedLogZ, IntegrationPath, integrate
from fieldflow.lattice import Point
from fieldflow.quality import chain_problems, judge
from fieldflow.stages.observables import columns_for, point_columns
from fieldflow.study import PULL_LIMIT
from fieldflow.study.roles import theory_of_columns
from fieldflow.theory import PHI4, PointLike

log = logging.getLogger(__name__)

#: The contract's columns, then the estimate's diagnostics and its quality verdict.
FREE_ENERGY_COLUMNS = (
    "L,s,lam,sampler,method,log_Z,error,f,f_error,"
    "error_method,lower_bound,ess,pareto_k,n_samples,pull,reliable,reason"
).split(",")


def _row(
    point: PointLike,
    sampler: str,
    method: str,
    result: fe.FlowLogZ | IntegratedLogZ,
    **diagnostics: float | str,
) -> dict:
    """One row of the table: the point's columns, the contract's others, the diagnostics,
    the verdict."""
    verdict = "reliable" if result.reliable else f"unreliable: {result.reason}"
    log.info(
        "%s (%s) at %s: log Z = %.6f ± %.2g, %s",
        sampler,
        method,
        point.key,
        result.log_Z,
        result.error,
        verdict,
    )
    return {
        **point.columns(),
        "sampler": sampler,
        "method": method,
        "log_Z": result.log_Z,
        "error": result.error,
        "f": -result.log_Z / point.volume,
        "f_error": result.error / point.volume,
        **diagnostics,
        "reliable": result.reliable,
        "reason": result.reason,
    }


def flow_row(path: str | Path) -> dict:
    """log Z of one flow ensemble from its raw proposals' log weights (``proposal_log_weight``)."""
    dataset = reader.read_ensemble(path)
    if "proposal_log_weight" not in dataset:
        raise reader.EnsembleError(f"ensemble {path} has no raw proposals (proposal_log_weight)")
    attrs = dataset.attrs
    theory = reader.theory_of(dataset)
    point = theory.point_of(attrs)
    log_weight = reader.load_array(dataset, "proposal_log_weight")
    m = reader.load_array(dataset, "proposal_m") if "proposal_m" in dataset else None
    try:
        result = fe.flow_log_z(log_weight, seed=int(attrs["seed"]), magnetization=m)
    except ValueError as err:
        raise reader.EnsembleError(f"ensemble {path}: {err}") from err
    return _row(
        point,
        attrs["sampler"],
        "flow",
        result,
        error_method=result.error_method,
        lower_bound=result.lower_bound,
        ess=result.ess,
        pareto_k=result.pareto_k,
        n_samples=result.n_proposals,
    )


def node_mean(path: str | Path, power: int) -> tuple[float, float, int, str]:
    """Γ-method mean of Σ_x φ_x^``power`` over one node's ensemble, read a chunk at a time.

    Returns (mean, error, configurations, why it is unreliable or "").
    """
    dataset = reader.read_ensemble(path)
    n_chains, n_draws = dataset.sizes["chain"], dataset.sizes["draw"]
    sums = np.empty((n_chains, n_draws))
    for chain, draws, phi in io.iter_chunks(dataset, "phi"):
        sums[chain, draws] = fe.sum_of_powers(phi, power)
    thin = int(dataset.attrs.get("thin", 1))
    estimate = in_updates(gamma_estimate(sums), thin)  # τ_int counts updates
    accepted = None
    if "accepted" in dataset:
        accepted = int(reader.load_array(dataset, "accepted").sum())
    n = n_chains * n_draws
    quality = judge(estimate, thin * n, chain_problems(n, accepted=accepted))
    return estimate.value, estimate.error, n, quality.reason


def integration_row(path: IntegrationPath, sampler: str, nodes: Mapping[str, str | Path]) -> dict:
    """log Z at the end of ``path`` by thermodynamic integration over the node ensembles."""
    point = Point(path.L, path.s, path.lam)
    means, unreliable, n_samples = {}, {}, 0
    for node in path.nodes():
        if node.name not in nodes:
            raise KeyError(f"integration at {point.key}: no ensemble for node {node.name}")
        mean, error, n, reason = node_mean(nodes[node.name], node.power)
        means[node.name] = (mean, error)
        unreliable[node.name] = reason
        n_samples += n
    result = integrate(path, means, unreliable)
    return _row(
        point,
        sampler,
        "integration",
        result,
        error_method="gamma",
        lower_bound=np.nan,
        ess=np.nan,
        pareto_k=np.nan,
        n_samples=n_samples,
    )


def paths_from(fields: Mapping[str, Mapping[str, float]]) -> dict[str, IntegrationPath]:
    """Integration paths from {point key: their fields (L, s, lam, s0, n_nodes)}: rule
    free_energy passes them so, not as objects, for Snakemake to compare between runs."""
    return {key: IntegrationPath(**path) for key, path in fields.items()}


def with_pulls(table: pd.DataFrame, limit: float = PULL_LIMIT) -> pd.DataFrame:
    """``table`` with a column ``pull``: each flow's log Z against the integration at its
    point, (flow − integration)/σ, or where there is none against the theory's exact log Z
    (:attr:`fieldflow.theory.Theory.log_z`: φ⁴ at λ = 0, U(1) always); NaN for the
    integration rows and where there is neither."""
    pulls = np.full(len(table), np.nan)
    if table.empty:
        return table.assign(pull=pulls)
    theory = theory_of_columns(table.columns)
    columns = point_columns(theory)
    reference = table[table["method"] == "integration"].set_index(columns)
    for i, row in enumerate(table.to_dict("records")):
        at = tuple(row[c] for c in columns)
        if row["method"] != "flow":
            continue
        if at in reference.index:
            ref = reference.loc[at]
            ref_value, ref_error, name = float(ref["log_Z"]), float(ref["error"]), "integration"
        else:
            exact = theory.log_z(theory.point_of(row))
            if exact is None:
                continue
            ref_value, ref_error, name = exact, 0.0, "exact value"
        pulls[i] = pull(row["log_Z"], row["error"], ref_value, ref_error)
        if abs(pulls[i]) > limit:
            log.warning(
                "%s at %s: log Z %.4f ± %.2g is %.1fσ from the %s %.4f ± %.2g%s",
                row["sampler"],
                " ".join(f"{c}={row[c]}" for c in columns),
                row["log_Z"],
                row["error"],
                pulls[i],
                name,
                ref_value,
                ref_error,
                "" if row["reliable"] else " (flagged unreliable)",
            )
    return table.assign(pull=pulls)


def free_energy_stage(
    flow_ensembles: Sequence[str | Path],
    paths: Mapping[str, IntegrationPath],
    node_ensembles: Mapping[str, Mapping[str, str | Path]],
    sampler: str,
    table_path: str | Path,
) -> pd.DataFrame:
    """Write results/tables/free_energy.csv; a flow more than 4σ from the integration at its
    point is a warning in the log (and its ``pull`` column says by how much).

    Args:
        flow_ensembles: every flow ensemble of the study.
        paths: the integration path per point key.
        node_ensembles: per point key, the ensemble of each node name of its path.
        sampler: the Markov-chain sampler of the node ensembles.
    """
    rows = [flow_row(path) for path in flow_ensembles]
    for key, path in paths.items():
        rows.append(integration_row(path, sampler, node_ensembles[key]))
    # A study is of one theory (config_points); its rows carry its point columns.
    theory = theory_of_columns(list(rows[0])) if rows else PHI4
    table = with_pulls(pd.DataFrame(rows, columns=columns_for(FREE_ENERGY_COLUMNS, theory)))
    table = table.sort_values([*point_columns(theory), "method", "sampler"], kind="stable")
    Path(table_path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(table_path, index=False)
    return table
