"""The pipeline's stages as plain functions over paths, so each workflow script is thin.

Each stage reads its inputs, calls the library and writes its outputs; none keeps state
between calls. The Snakemake rules in ``workflow/rules`` call these through their scripts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from fieldflow import analysis, errors, io, lattice, quality, samplers, study, tunnelling
from fieldflow.config import ConfigError
from fieldflow.flows import Flow, ModelFileError, build_flow, load_model, save_model, transfer
from fieldflow.lattice import Point
from fieldflow.mcmc.metropolis import ProposalBatch, StreamingChain, iter_proposals
from fieldflow.mcmc.timing import Stopwatch, UpdateTime, clock_for
from fieldflow.training import TRANSFER_COLUMNS, config_from_dict, train, transfer_saving

log = logging.getLogger(__name__)

OBSERVABLE_COLUMNS = [
    "L", "s", "lam", "sampler", "observable", "value", "error", "tau_int", "tau_int_error",
    "n_samples", "reliable", "reason",
]  # fmt: skip
SAMPLER_COLUMNS = [
    "L", "s", "lam", "sampler", "acceptance", "ess", "train_seconds", "sample_seconds",
    "n_samples", "kind", "n_chains", "n_proposals", "step_size", "n_leapfrog",
    "trajectory_length", "local_sweeps", "variant", "train_steps", "parameters",
    "discretisation_error", "seconds_per_update", "seconds_per_update_error", "thin",
]  # fmt: skip
TUNNELLING_COLUMNS = [
    "L", "s", "lam", "sampler", "n_chains", "n_draws", "threshold", "crossings",
    "per_1000_updates", "per_second", "tunnel_updates", "bound", "thin",
]  # fmt: skip
HISTOGRAM_COLUMNS = ["L", "s", "lam", "sampler", "bin_low", "bin_high", "density"]


def resolve_device(device: str) -> torch.device:
    """'auto' → CUDA when torch sees a GPU, else CPU; 'cuda' without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'device': cuda, but torch sees no CUDA GPU")
    return torch.device(device)


def _point(params: dict[str, Any]) -> Point:
    return Point(int(params["L"]), float(params["s"]), float(params["lam"]), params.get("name", ""))


def train_stage(
    point: dict[str, Any],
    family: str,
    hyperparameters: dict[str, Any],
    training: dict[str, Any],
    device: str,
    seed: int,
    model_path: str | Path,
    history_path: str | Path,
    checkpoint: str | Path | None = None,
    init_model: str | Path | None = None,
    progress: bool = True,
) -> None:
    """Train one flow at one point; write the model and its history CSV.

    With ``init_model``, start from a flow of the same family trained at a smaller L
    (:func:`fieldflow.flows.transfer`) instead of the identity.
    """
    p = _point(point)
    torch.manual_seed(seed)
    flow = build_flow(family, p.L, hyperparameters)
    if init_model is not None:
        source, meta = load_model(init_model)
        if meta["family"] != family:
            raise ModelFileError(f"{init_model} holds a {meta['family']} flow, not {family}")
        flow = transfer(source, family, p.L, hyperparameters)
        log.info("initialised from %s (L=%d)", init_model, source.L)
    flow = flow.to(resolve_device(device))
    # A transferred flow is fine-tuned at transfer_lr: at lr 0.01 the cnf's field blew up
    # within 50 steps after L = 12 -> 20, at 0.002 it did not (docs/decisions.md).
    transfer_lr = training.get("transfer_lr")
    if init_model is not None and transfer_lr is not None:
        log.info("fine-tuning the transferred flow at transfer_lr = %g", transfer_lr)
    settings = config_from_dict(
        {**training, "lr": transfer_lr} if init_model is not None and transfer_lr else training
    )
    fingerprint = hashlib.sha256(
        json.dumps(
            [point, family, hyperparameters, training, seed, str(init_model)], sort_keys=True
        ).encode()
    ).hexdigest()
    result = train(flow, p, settings, seed, checkpoint, fingerprint, progress=progress)
    history = pd.DataFrame(result.history, columns=["step", "seconds", "loss", "ess"])
    Path(history_path).parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(history_path, index=False)
    # A refined ODE (more RK4 steps after a failed integration check) is saved as refined.
    save_model(
        model_path, flow.cpu(), family, {**hyperparameters, **result.hyperparameter_override},
        point=point, train_seconds=result.seconds, train_steps=result.steps,
        recoveries=result.recoveries, seed=seed, final_state=result.final_state,
        final_step=result.final_step, refinements=result.refinements,
    )  # fmt: skip
    if checkpoint is not None:
        io.discard(checkpoint, empty_parents=2)  # results/checkpoints/{flow}/ when empty
    log.info("trained %s at %s: %d steps in %.1f s", family, p.key, result.steps, result.seconds)


def sample_flow_stage(
    model_path: str | Path,
    point: dict[str, Any],
    sampling: dict[str, Any],
    device: str,
    seed: int,
    ensemble_path: str | Path,
    sampler: str,
) -> None:
    """Draw flow proposals, run independence MH chains, write the ensemble, batch by batch.

    Memory does not grow with the number of samples (:func:`_flow_chains`), and the
    ensemble is the one that drawing every proposal first would give, for the same seed.
    ``sample_seconds`` is the wall time of proposals, chains and writing together;
    ``seconds_per_update`` (and its error) the median seconds per proposal over the timed
    batches, free of the Metropolis step and the writing.
    """
    p = _point(point)
    flow, meta = load_model(model_path)
    precision = {"float32": torch.float32, "float64": torch.float64}[
        sampling.get("precision", "float64")
    ]
    flow = flow.to(resolve_device(device), dtype=precision).eval()
    n_chains, per_chain = sampling["n_chains"], sampling["n_samples"] + sampling["burn_in"]
    attrs = {
        "L": p.L, "s": p.s, "lam": p.lam, "sampler": sampler, "kind": "flow", "seed": seed,
        "versions": io.versions(), "train_seconds": float(meta["meta"]["train_seconds"]),
        "train_steps": int(meta["meta"]["train_steps"]), "parameters": flow.n_parameters(),
        "n_proposals": int(n_chains * per_chain),
        "precision": str(precision).removeprefix("torch."),
    }  # fmt: skip
    start = time.perf_counter()
    generator = torch.Generator(device=next(flow.parameters()).device).manual_seed(seed)
    with io.EnsembleWriter(ensemble_path, attrs) as out:
        acceptance, log_w, timing = _flow_chains(flow, p, sampling, generator, seed, out)
        out.attrs.update({
            "acceptance": acceptance, "ess": analysis.ess(log_w),
            "sample_seconds": time.perf_counter() - start,
            # |Δ log q| against a 2× finer integration (0 for exact coupling flows).
            "discretisation_error": flow.discretisation_error(256, generator),
            **timing.info(),
        })  # fmt: skip
        attrs = out.attrs
    if attrs["discretisation_error"] > 0.2:
        log.warning("%s at %s: log q is off by up to %.3g against a finer integration; the "
                    "Metropolis chain targets a distorted distribution", sampler, p.key,
                    attrs["discretisation_error"])  # fmt: skip
    log.info("%s at %s: acceptance %.3f, ESS %.3f", sampler, p.key, attrs["acceptance"],
             attrs["ess"])  # fmt: skip


def _flow_chains(
    flow: Flow,
    p: Point,
    sampling: dict[str, Any],
    generator: torch.Generator,
    seed: int,
    out: io.EnsembleWriter,
) -> tuple[float, np.ndarray, UpdateTime]:
    """Flow proposals and their independence MH chains, into ``out`` batch by batch.

    Proposals come in batches (:func:`fieldflow.mcmc.metropolis.iter_proposals`), chain
    after chain: ``n_chains · (burn_in + n_samples)`` of them, numbered chain · per_chain
    + position. Each batch extends its chain (a
    :class:`~fieldflow.mcmc.metropolis.StreamingChain` carries the current state to the
    next batch, the uniform numbers come from ``default_rng(seed)`` in proposal order);
    its kept chain states and the primaries of its raw proposals then go to ``out``.

    Returns:
        the acceptance over the kept draws, the log weights of every proposal
        (chain, per_chain), for the ESS, and the seconds per proposal.
    """
    n_chains, n_keep, burn_in = sampling["n_chains"], sampling["n_samples"], sampling["burn_in"]
    per_chain = n_keep + burn_in
    probe = ensemble_primaries(np.zeros((1, 1, p.L, p.L), dtype=np.float32))
    per_proposal = {"log_weight": (per_chain,)}
    per_proposal.update({name: (per_chain, *v.shape[2:]) for name, v in probe.items()})
    per_draw = {"action": np.float64, "log_q": np.float64, "log_weight": np.float64,
                "accepted": np.bool_}  # fmt: skip
    out.start(n_chains, n_keep, p.L, per_draw, per_proposal)
    rng = np.random.default_rng(seed)
    watch = Stopwatch(clock_for(next(flow.parameters()).device.type))
    chains = [StreamingChain() for _ in range(n_chains)]
    log_w = np.empty((n_chains, per_chain))
    accepted, first = 0, 0
    batches = iter_proposals(flow, p, n_chains * per_chain, sampling["batch_size"], generator,
                             watch)  # fmt: skip
    for batch in batches:
        for chain, where, part in _by_chain(batch, first, per_chain):
            states, accept = chains[chain].extend(part, np.log(rng.uniform(size=len(part))))
            log_w[chain, where] = part.log_weight
            kept = slice(max(burn_in - where.start, 0), None)
            states, accept = states[kept], accept[kept]
            if len(states):
                accepted += int(accept.sum())
                series = {"action": states.action, "log_q": states.log_q,
                          "log_weight": states.log_weight, "accepted": accept}  # fmt: skip
                out.append(states.phi, series, chain=chain)
            primaries = {k: v[0] for k, v in ensemble_primaries(part.phi[None]).items()}
            out.append_proposals({"log_weight": part.log_weight, **primaries}, chain=chain)
        first += len(batch)
    acceptance = accepted / (n_chains * n_keep) if n_keep else math.nan
    return acceptance, log_w, watch.result()


def _by_chain(
    batch: ProposalBatch, first: int, per_chain: int
) -> Iterator[tuple[int, slice, ProposalBatch]]:
    """Split proposals numbered ``first``… (chain · per_chain + position) by chain.

    Yields (chain, its positions, its proposals of ``batch``).
    """
    offset = 0
    while offset < len(batch):
        chain, position = divmod(first + offset, per_chain)
        size = min(per_chain - position, len(batch) - offset)
        yield chain, slice(position, position + size), batch[offset : offset + size]
        offset += size


def mcmc_stage(
    sampler: str,
    point: dict[str, Any],
    settings: dict[str, Any],
    seed: int,
    ensemble_path: str | Path,
    progress: bool = True,
) -> None:
    """Run a Markov-chain baseline of :data:`fieldflow.samplers.MCMC` at one point.

    ``settings`` is the config section of the same name. The kept draws go to the store as
    they are made (:class:`fieldflow.io.EnsembleWriter`), so memory does not grow with the
    run. The ensemble's ``sample_seconds`` covers burn-in, tuning and writing; its
    ``seconds_per_update`` (and error), from the sampler's info, times the production
    updates only, batch by batch, thinned away or not; ``thin`` is in the info too.
    """
    run = samplers.mcmc_stream(sampler)
    p = _point(point)
    attrs = {
        "L": p.L, "s": p.s, "lam": p.lam, "sampler": sampler, "kind": "mcmc", "seed": seed,
        "versions": io.versions(),
    }  # fmt: skip
    start = time.perf_counter()
    with io.EnsembleWriter(ensemble_path, attrs) as out:
        result = run(p, settings, seed, out, progress)
        seconds = time.perf_counter() - start
        out.attrs.update(acceptance=result.acceptance, sample_seconds=seconds,
                         n_proposals=out.sizes["chain"] * out.sizes["draw"])  # fmt: skip
        clash = out.attrs.keys() & result.info.keys()
        if clash:
            raise ValueError(f"{sampler} reports {sorted(clash)} in its info, which the stage sets")
        out.attrs.update(result.info)
    details = ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                        for key, value in result.info.items())  # fmt: skip
    log.info("%s at %s: acceptance %.3f, %s, %.1f s", sampler, p.key, result.acceptance,
             details, seconds)  # fmt: skip


def ensemble_primaries(phi: np.ndarray, chunk: int = 8192) -> dict[str, np.ndarray]:
    """Per-configuration primaries (float64) of φ with shape (chain, draw, L, L).

    Each is (chain, draw), except ``correlator``, the time-slice correlator (chain, draw, L).
    """
    n_chains, n_draws = phi.shape[:2]
    flat = phi.reshape(n_chains * n_draws, *phi.shape[2:])
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, flat.shape[0], chunk):
        batch = torch.from_numpy(np.asarray(flat[start : start + chunk], dtype=np.float64))
        for name, values in lattice.primary_observables(batch).items():
            parts.setdefault(name, []).append(values.numpy())
        parts.setdefault("correlator", []).append(lattice.timeslice_correlator(batch).numpy())
    return {
        k: np.concatenate(v).reshape(n_chains, n_draws, *v[0].shape[1:]) for k, v in parts.items()
    }


def stored_primaries(dataset: xr.Dataset) -> dict[str, np.ndarray]:
    """:func:`ensemble_primaries` of the φ of an open ensemble, read one chunk at a time.

    Only a chunk of φ (:func:`fieldflow.io.iter_chunks`) is in memory at once, besides the
    primaries themselves, (chain, draw) each and (chain, draw, L) for ``correlator``.
    """
    n_chains, n_draws = dataset.sizes["chain"], dataset.sizes["draw"]
    primaries: dict[str, np.ndarray] = {}
    for chain, draws, phi in io.iter_chunks(dataset, "phi"):
        for name, values in ensemble_primaries(phi[None]).items():
            if name not in primaries:
                primaries[name] = np.empty((n_chains, n_draws, *values.shape[2:]))
            primaries[name][chain, draws] = values[0]
    return primaries


def observables_stage(
    ensemble_path: str | Path,
    table_path: str | Path,
    S: float = 2.0,
    reweighted_path: str | Path | None = None,
    correlator_path: str | Path | None = None,
    tunnelling_path: str | Path | None = None,
    histogram_path: str | Path | None = None,
) -> None:
    """Γ-method estimates of every observable of one ensemble, as contract rows.

    Each row carries the verdict of :mod:`fieldflow.quality` (``reliable``, ``reason``),
    judged from this ensemble alone. Optionally also the self-normalised reweighting
    estimates from a flow ensemble's raw proposals (``reweighted_path``; header only for a
    Markov chain), C(t), m_eff(t) of the chain (``correlator_path``), its crossings between
    the vacua (``tunnelling_path``, one row of :data:`TUNNELLING_COLUMNS`) and the
    distribution of M/V (``histogram_path``, :data:`HISTOGRAM_COLUMNS`), both from
    :mod:`fieldflow.tunnelling`. φ is read one chunk at a time (:func:`stored_primaries`):
    memory grows with the per-configuration primaries only, not with the fields.
    """
    dataset = io.read_ensemble(ensemble_path)
    attrs = dataset.attrs
    L = int(attrs["L"])
    primaries = stored_primaries(dataset)
    keys = {"L": attrs["L"], "s": attrs["s"], "lam": attrs["lam"], "sampler": attrs["sampler"]}

    # τ_int counts updates (DESIGN.md): a chain thinned by `thin` stores every thin-th one,
    # so τ per stored draw times thin, which makes seconds_per_update · 2τ_int the cost of
    # an independent sample (an upper bound on τ per update where τ ≲ thin).
    thin = int(attrs.get("thin", 1))

    def rows(
        estimates: dict[str, analysis.Estimate], n: int, problems: list[str], thin: int = 1
    ) -> pd.DataFrame:
        estimates = {name: analysis.Estimate(e.value, e.error, thin * e.tau_int,
                                             thin * e.tau_int_error)
                     for name, e in estimates.items()}  # fmt: skip
        verdicts = {name: quality.judge(e, n * thin, problems) for name, e in estimates.items()}
        return pd.DataFrame([
            {**keys, "observable": name, "value": e.value, "error": e.error,
             "tau_int": e.tau_int, "tau_int_error": e.tau_int_error, "n_samples": n,
             "reliable": verdicts[name].reliable, "reason": verdicts[name].reason}
            for name, e in estimates.items()
        ], columns=OBSERVABLE_COLUMNS)  # fmt: skip

    n = dataset.sizes["chain"] * dataset.sizes["draw"]
    # A flow's effective number of raw proposals limits both of its estimators.
    effective = attrs["ess"] * attrs["n_proposals"] if attrs.get("kind") == "flow" else None
    problems = quality.chain_problems(
        n,
        accepted=int(io.load_array(dataset, "accepted").sum()) if "accepted" in dataset else None,
        effective=effective,
        magnetization=primaries["m"],  # only its sign is used
    )
    for problem in problems:
        log.warning("%s at %s: unreliable: %s", attrs["sampler"], Point(L, attrs["s"],
                    attrs["lam"]).key, problem)  # fmt: skip
    outputs = {table_path: rows(analysis.observables(primaries, L, S), n, problems, thin)}
    if reweighted_path is not None:
        reweighted = pd.DataFrame(columns=OBSERVABLE_COLUMNS)
        if "proposal_log_weight" in dataset:
            raw = {name.removeprefix("proposal_"): io.load_array(dataset, name)
                   for name in dataset.data_vars if name.startswith("proposal_")}  # fmt: skip
            log_w = raw.pop("log_weight")
            if "m" not in raw:
                log.info("%s: raw proposals stored without M (older fieldflow): reweighted "
                         "magnetization is NaN", ensemble_path)  # fmt: skip
            estimates = analysis.observables(raw, L, S, log_weights=log_w)
            effective_only = quality.chain_problems(log_w.size, effective=effective)
            reweighted = rows(estimates, log_w.size, effective_only)
        outputs[reweighted_path] = reweighted
    if correlator_path is not None:
        correlator = pd.DataFrame(analysis.correlator_rows(primaries["correlator"], S))
        outputs[correlator_path] = correlator.assign(**keys)[[*keys, *correlator.columns]]
    if tunnelling_path is not None:
        found = tunnelling.tunnelling(primaries["m"], attrs.get("seconds_per_update", np.nan),
                                      thin=thin)  # fmt: skip
        outputs[tunnelling_path] = pd.DataFrame([{**keys, **found.row()}],
                                                columns=TUNNELLING_COLUMNS)  # fmt: skip
        log.info("%s: %d crossings of |M/V| > %.3g in %d updates", ensemble_path,
                 found.crossings, found.threshold, found.updates)  # fmt: skip
    if histogram_path is not None:
        edges, density = tunnelling.histogram(primaries["m"])
        outputs[histogram_path] = pd.DataFrame(
            {**keys, "bin_low": edges[:-1], "bin_high": edges[1:], "density": density},
            columns=HISTOGRAM_COLUMNS,
        )
    for path, frame in outputs.items():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)


def tables_stage(
    observable_tables: list[str | Path],
    ensemble_paths: list[str | Path],
    observables_path: str | Path,
    samplers_path: str | Path,
    parameters_path: str | Path | None = None,
) -> None:
    """Gather per-ensemble results into results/tables/{observables,samplers}.csv.

    With ``parameters_path``, also write each flow's parameter count per lattice size.
    """
    frames = [pd.read_csv(path) for path in observable_tables]
    for path, frame in zip(observable_tables, frames, strict=True):
        missing = [column for column in OBSERVABLE_COLUMNS if column not in frame]
        if missing:
            raise errors.ResultFileError(f"{path} lacks the columns {missing} (written by an older "
                             "fieldflow): rerun with --forcerun observables")  # fmt: skip
    observables = pd.concat(frames, ignore_index=True)[OBSERVABLE_COLUMNS]
    rows = []
    for path in ensemble_paths:
        dataset = io.read_ensemble(path)
        row = {key: dataset.attrs.get(key, np.nan) for key in SAMPLER_COLUMNS}
        # Ensembles written before samplers declared a kind.
        row["kind"] = dataset.attrs.get("kind") or samplers.kind(dataset.attrs["sampler"])
        row["n_samples"] = dataset.sizes["chain"] * dataset.sizes["draw"]
        row["n_chains"] = dataset.sizes["chain"]
        rows.append(row)
    table = pd.DataFrame(rows, columns=SAMPLER_COLUMNS)
    for frame, path in ((observables, observables_path), (table, samplers_path)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        frame.sort_values(["L", "s", "lam", "sampler"], kind="stable").to_csv(path, index=False)
    if parameters_path is not None:
        flows = table[table["kind"] == "flow"][["sampler", "L", "parameters"]]
        flows = flows.drop_duplicates().sort_values(["sampler", "L"])
        flows.astype({"parameters": int}).to_csv(parameters_path, index=False)


def study_stage(
    observables_path: str | Path,
    samplers_path: str | Path,
    reweighted_tables: list[str | Path],
    correlator_tables: list[str | Path],
    outputs: dict[str, str | Path],
    tunnelling_tables: Sequence[str | Path] = (),
    histogram_tables: Sequence[str | Path] = (),
) -> list[str]:
    """The study-level tables of :mod:`fieldflow.study`, from the gathered contract tables.

    ``outputs`` maps ``reweighting``, ``correlators``, ``agreement``, ``scaling``,
    ``exponents``, ``crossover``, ``tunnelling`` and ``magnetization_histograms`` to their
    CSV paths; the last two gather the per-ensemble ``tunnelling_tables`` and
    ``histogram_tables`` of :func:`observables_stage`. Pulls beyond 4σ (against a
    reference, and of ⟨M⟩ against 0) are logged as warnings and returned.
    """
    observables = pd.read_csv(observables_path)
    sampler_table = pd.read_csv(samplers_path)
    kinds = study.sampler_kinds(sampler_table)
    frames = [
        f for f in map(pd.read_csv, reweighted_tables) if not f.empty
    ]  # empty for Markov chains
    reweighted = (pd.concat(frames, ignore_index=True) if frames
                  else pd.DataFrame(columns=OBSERVABLE_COLUMNS))  # fmt: skip
    point = ["L", "s", "lam", "sampler", "observable"]
    comparison = reweighted[[*point, "value", "error"]].merge(
        observables[[*point, "value", "error"]], on=point, suffixes=("_rw", "_mh")
    )
    comparison["difference_sigma"] = (comparison["value_rw"] - comparison["value_mh"]) / np.hypot(
        comparison["error_rw"], comparison["error_mh"]
    )
    correlators = pd.concat([pd.read_csv(path) for path in correlator_tables], ignore_index=True)
    agreement = study.agreement(observables, kinds, reweighted)
    scaling = study.scaling(observables, sampler_table)
    crossings = _gather(tunnelling_tables, TUNNELLING_COLUMNS)
    tables = {
        "reweighting": comparison,
        "correlators": correlators,
        "agreement": agreement,
        "scaling": scaling,
        "exponents": study.dynamic_exponents(scaling),
        "crossover": study.crossovers(scaling),
        "tunnelling": study.tunnelling(crossings, observables, sampler_table),
        "magnetization_histograms": _gather(histogram_tables, HISTOGRAM_COLUMNS),
    }
    for name, frame in tables.items():
        Path(outputs[name]).parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(outputs[name], index=False)
    for r in observables[~observables["reliable"].astype(bool)].itertuples():
        log.warning("unreliable: %s %s at L=%d s=%g lam=%g: %s", r.sampler, r.observable, r.L,
                    r.s, r.lam, r.reason)  # fmt: skip
    for r in tables["exponents"].itertuples():
        log.info("%s: tau_int(%s) ~ xi2^z, z = %.2f +- %.2f (chi2/dof %.2f, %d points)",
                 r.sampler, r.observable, r.z, r.z_error, r.chi2_dof, r.n_points)  # fmt: skip
    for r in tables["tunnelling"][tables["tunnelling"]["bound"] == "lower"].itertuples():
        log.info("%s at L=%d s=%g lam=%g: no crossing between the vacua; tau_int(M) > %.0f",
                 r.sampler, r.L, r.s, r.lam, r.tau_m)  # fmt: skip
    return study.report_large_pulls(agreement) + study.report_stuck(tables["tunnelling"])


def _gather(paths: Sequence[str | Path], columns: list[str]) -> pd.DataFrame:
    """The per-ensemble CSV files at ``paths`` as one table (``columns`` if there are none)."""
    frames = [pd.read_csv(path) for path in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def transfer_stage(runs: list[dict[str, Any]], table_path: str | Path) -> pd.DataFrame:
    """Write results/tables/transfer.csv: the training time saved by ``init_from``.

    Args:
        runs: one dict per (flow, transferred point) with keys ``flow``, ``transferred``
            and ``scratch`` (training-history CSVs of the same point, started from the
            smaller lattice's flow and from scratch) and ``source_model`` (that flow).
        table_path: where the table goes.
    """
    rows = []
    for run in runs:
        transferred = pd.read_csv(run["transferred"])
        scratch = pd.read_csv(run["scratch"])
        _, source = load_model(run["source_model"])
        target = _point(run["point"])
        rows.append({
            "flow": run["flow"], "L": target.L, "s": target.s, "lam": target.lam,
            "source_L": source["L"],
            "source_train_seconds": float(source["meta"]["train_seconds"]),
            **transfer_saving(transferred, scratch),
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=TRANSFER_COLUMNS)
    Path(table_path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(table_path, index=False)
    for r in table.itertuples():
        log.info("%s L=%d from L=%d: ESS %.3f after %.0f s (scratch: %.0f s)", r.flow, r.L,
                 r.source_L, r.target_ess, r.seconds_transfer, r.seconds_scratch)  # fmt: skip
    return table


def log_to(path: str | Path) -> None:
    """Send a job's logging, progress bars and tracebacks to its log file.

    fieldflow's own errors then print one line to the log (shown by Snakemake) instead of a
    traceback (:mod:`fieldflow.errors`).
    """
    import sys

    errors.install()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stderr = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")  # fmt: skip
