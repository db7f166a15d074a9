"""Figure builders of fieldflow.plots on small synthetic tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from fieldflow import plots
from fieldflow.samplers import kind

POINTS = [(8, -4.0, 8.0), (6, -4.0, 6.975)]
POINTS_4 = [*POINTS, (8, -4.0, 5.0), (10, -4.0, 5.5)]
OBSERVABLES = list(plots.OBSERVABLE_LABELS)


def point_key(L: int, s: float, lam: float) -> str:
    return f"L{L}_s{s:g}_lam{lam:g}"


def samplers_table(samplers: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {
            "L": L,
            "s": s,
            "lam": lam,
            "sampler": name,
            "acceptance": rng.uniform(0.2, 0.9),
            "ess": math.nan if kind(name) == "mcmc" else rng.uniform(0.05, 0.8),
            "train_seconds": math.nan if kind(name) == "mcmc" else 12.0,
            "sample_seconds": 3.0,
            "n_samples": 1000,
            "kind": kind(name),
        }
        for L, s, lam in POINTS
        for name in samplers
    ]
    return pd.DataFrame(rows)


def observables_table(samplers: list[str], observables: list[str] = OBSERVABLES) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for L, s, lam in POINTS:
        for name in samplers:
            for observable in observables:
                derived = observable in ("binder", "correlation_length")
                value = 0.75 if observable == "susceptibility" else rng.uniform(0.1, 2.0)
                rows.append(
                    {
                        "L": L,
                        "s": s,
                        "lam": lam,
                        "sampler": name,
                        "observable": observable,
                        "value": value,
                        "error": 0.02,
                        "tau_int": math.nan if derived else rng.uniform(0.5, 20.0),
                        "tau_int_error": math.nan if derived else 0.3,
                        "n_samples": 1000,
                        "reliable": True,
                        "reason": "",
                    }
                )
    # A missing estimate must be skipped, not break the panel; an unreliable one is hollow.
    rows[0]["value"] = math.nan
    rows[1].update(reliable=False, reason="run of 1000 < 100 τ_int")
    return pd.DataFrame(rows)


def histories(flows: list[str], points=POINTS) -> dict[str, pd.DataFrame]:
    step = np.arange(0, 200, 10)
    return {
        f"{flow} {point_key(*point)}": pd.DataFrame(
            {
                "step": step,
                "seconds": 0.05 * step,
                "loss": -50.0 + 40.0 * np.exp(-step / 50.0),
                "ess": 1.0 - np.exp(-step / 80.0),
            }
        )
        for flow in flows
        for point in points
    }


def ensembles(samplers: list[str]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    return {
        f"{name} {point_key(L, s, lam)}": rng.normal(size=(4, L, L))
        for name in samplers
        for L, s, lam in POINTS
    }


def study_inputs() -> dict[str, object]:
    """Every input a figure of plots.FIGURES may name, small and synthetic."""
    from test_study import scaling_inputs, tunnelling_inputs

    from fieldflow import study

    samplers = ["hmc", "cluster", "realnvp", "nsf", "cnf"]
    flows = [name for name in samplers if kind(name) == "flow"]
    observables, scaling_samplers = scaling_inputs()
    scaling = study.scaling(observables, scaling_samplers)
    kinds = dict(zip(scaling_samplers["sampler"], scaling_samplers["kind"], strict=True))
    agreement = study.agreement(observables.assign(value=observables.value * 1.01), kinds)
    correlators = pd.DataFrame(
        {
            "L": 6,
            "s": -4.0,
            "lam": 5.0,
            "sampler": ["hmc", "cnf"] * 3,
            "t": [0, 0, 1, 1, 2, 2],
            "correlator": 1.0,
            "correlator_error": 0.1,
            "m_eff_error": 0.02,
            "m_eff": [None, None, 0.7, 0.71, 0.69, 0.7],
        }
    )
    histograms = pd.DataFrame(
        {
            "L": 8,
            "s": -4.0,
            "lam": 8.0,
            "sampler": ["hmc", "cnf"] * 2,
            "bin_low": [-1.0, -1.0, 0.0, 0.0],
            "bin_high": [0.0, 0.0, 1.0, 1.0],
            "density": 0.5,
        }
    )
    history = histories(["realnvp"])[f"realnvp {point_key(*POINTS[0])}"]
    transfer = [
        {
            "flow": flow,
            "label": label,
            "transferred": history,
            "scratch": history * 0.5,
            "source_seconds": 3.0,
            "target_ess": 0.2,
        }
        for flow in flows
        for label in ("E4", "E5")
    ]
    return {
        "histories": histories(flows, POINTS_4),
        "ensembles": ensembles(samplers[:2]),
        "samplers": samplers_table(samplers),
        "observables": observables_table(samplers, ["phi2", "susceptibility", "binder"]),
        "anchors": plots.load_anchors(),
        # Two points at each L, so the cost lines are markers only; pulls against two
        # references.
        "scaling": pd.concat([scaling, scaling.assign(lam=6.0)]),
        "exponents": study.dynamic_exponents(scaling),
        "crossover": study.crossovers(scaling),
        "agreement": pd.concat([agreement, agreement.assign(reference="exact")]),
        "correlators": correlators,
        "tunnelling": study.tunnelling(*tunnelling_inputs()),
        "magnetization_histograms": histograms,
        "transfer": transfer,
        "free_energy": free_energy_table(flows),
    }


def free_energy_table(flows: list[str]) -> pd.DataFrame:
    """Rows of results/tables/free_energy.csv: each flow and the integration at two points."""
    rows = []
    for L, lam in ((6, 6.975), (8, 6.008)):
        rows += [
            {
                "L": L,
                "s": -4.0,
                "lam": lam,
                "sampler": flow,
                "method": "flow",
                "log_Z": 10.0 + 0.01 * i,
                "error": 0.01,
                "reliable": i > 0,
            }
            for i, flow in enumerate(flows)
        ]
        rows.append(
            {
                "L": L,
                "s": -4.0,
                "lam": lam,
                "sampler": "hmc",
                "method": "integration",
                "log_Z": 10.0,
                "error": 0.02,
                "reliable": True,
            }
        )
    table = pd.DataFrame(rows)
    return table.assign(f=-table.log_Z / table.L**2, f_error=table.error / table.L**2)


def legend_styles(ax) -> list[tuple[str, str, str, str]]:
    """(colour, marker, line style, fill) of every line in the legend entries of ``ax``."""
    styles = []
    for handle in ax.get_legend_handles_labels()[0]:
        line = handle[0] if isinstance(handle, ErrorbarContainer) else handle
        if isinstance(line, Line2D):
            look = (line.get_marker(), line.get_linestyle(), line.get_fillstyle())
            styles.append((to_hex(line.get_color()), *map(str, look)))
    return styles


def assert_saved(fig: Figure, stem: Path) -> None:
    png, pdf = plots.save_figure(fig, stem)
    assert png == stem.parent / f"{stem.name}.png"
    assert png.stat().st_size > 5_000
    assert pdf.stat().st_size > 2_000


# Subsets of the observables keep the module fast: four still need two rows of panels,
# binder and correlation_length have no tau_int, and one gives a single panel.
@pytest.mark.parametrize(
    ("samplers", "observables"),
    [
        (["hmc", "cluster", "realnvp"], ["phi2", "susceptibility", "binder", "correlation_length"]),
        (["hmc"], ["susceptibility"]),
    ],
    ids=["flow+hmc", "hmc"],
)
def test_figures_build_and_save(
    samplers: list[str], observables: list[str], tmp_path: Path
) -> None:
    flows = [name for name in samplers if kind(name) == "flow"]
    observables = observables_table(samplers, observables)
    figures = {
        "training": plots.training_curves(histories(flows)),
        "acceptance_ess": plots.acceptance_ess(samplers_table(samplers)),
        "tau_int": plots.tau_int(observables),
        "observables": plots.observables_comparison(observables, plots.load_anchors()),
        "configurations": plots.configurations(ensembles(samplers), n=4),
    }
    for name, fig in figures.items():
        assert_saved(fig, tmp_path / name)


def test_single_point_and_dotted_stem(tmp_path: Path) -> None:
    table = observables_table(["realnvp"], ["susceptibility"])
    table = table[table["L"] == 8]
    fig = plots.observables_comparison(table, plots.load_anchors())
    assert_saved(fig, tmp_path / "L8_s-4_lam6.008")


def test_anchor_drawn_on_its_panel() -> None:
    fig = plots.observables_comparison(observables_table(["hmc"]), plots.load_anchors())
    labels = [
        text.get_text()
        for ax in fig.axes
        if ax.get_legend()
        for text in ax.get_legend().get_texts()
    ]
    assert any(label.startswith("Albergo et al. 2021 (HMC)") for label in labels)


def test_load_anchors_tutorial_point() -> None:
    (anchor,) = plots.load_anchors()
    assert anchor["observable"] == "susceptibility"
    assert (anchor["L"], anchor["s"], anchor["lam"]) == (8, -4.0, 8.0)
    assert anchor["value"] == pytest.approx(0.75)
    assert anchor["error"] == pytest.approx(0.01)
    assert anchor["label"] == "Albergo et al. 2021 (HMC)"


@pytest.mark.parametrize("samplers", [["realnvp", "nsf", "cnf", "hmc", "cluster"], ["hmc"]])
def test_family_figures(tmp_path, samplers):
    history = pd.DataFrame(
        {"step": [10, 20], "seconds": [1.0, 2.0], "loss": [1.0, 0.5], "ess": [0.1, 0.4]}
    )
    histories = {f"{s} L8_s-4_lam8": history for s in samplers if kind(s) == "flow"}
    for name, fig in {
        "families_vs_L": plots.families_vs_L(samplers_table(samplers)),
        "ess_vs_seconds": plots.ess_vs_seconds(histories, "L8_s-4_lam8"),
    }.items():
        png, pdf = plots.save_figure(fig, tmp_path / name)
        assert png.stat().st_size > 5000 and pdf.stat().st_size > 1000


@pytest.mark.parametrize("families", [["realnvp", "cnf"], []])
def test_transfer_figure(tmp_path, families):
    history = pd.DataFrame(
        {"step": [10, 20], "seconds": [1.0, 2.0], "loss": [1.0, 0.5], "ess": [0.1, 0.4]}
    )
    runs = [
        {
            "flow": f,
            "label": "E4",
            "transferred": history,
            "scratch": history * 0.5,
            "source_seconds": 3.0,
            "target_ess": 0.2,
        }
        for f in families
    ]
    png, pdf = plots.save_figure(plots.transfer_curves(runs), tmp_path / "transfer")
    assert png.stat().st_size > 5000 and pdf.stat().st_size > 1000


@pytest.mark.parametrize("empty", [False, True])
def test_study_figures(tmp_path, empty):
    from test_study import scaling_inputs

    from fieldflow import study

    observables, samplers = scaling_inputs()
    scaling = study.scaling(observables, samplers)
    kinds = dict(zip(samplers["sampler"], samplers["kind"], strict=True))
    agreement = study.agreement(observables.assign(value=observables.value * 1.01), kinds)
    agreement.loc[agreement.index[:1], "reliable"] = False  # drawn with a grey cross
    correlators = pd.DataFrame(
        {
            "L": 6,
            "s": -4.0,
            "lam": 5.0,
            "sampler": ["hmc", "cnf"] * 3,
            "t": [0, 0, 1, 1, 2, 2],
            "correlator": 1.0,
            "correlator_error": 0.1,
            "m_eff_error": 0.02,
            "m_eff": [None, None, 0.7, 0.71, 0.69, 0.7],
        }
    )
    if empty:
        scaling, agreement, correlators = (f.iloc[:0] for f in (scaling, agreement, correlators))
    figures = {
        "scaling": plots.scaling_tau(scaling, study.dynamic_exponents(scaling)),
        "cost": plots.cost_per_sample(scaling, study.crossovers(scaling)),
        "agreement": plots.pulls(agreement),
        "correlators": plots.effective_masses(correlators, observables),
    }
    for name, fig in figures.items():
        png, pdf = plots.save_figure(fig, tmp_path / name)
        assert png.stat().st_size > 5000 and pdf.stat().st_size > 1000


@pytest.mark.parametrize("case", ["smoke", "broken", "empty"])
def test_tunnelling_figures(tmp_path, case):
    """Every sampler tunnels (the smoke study), some are bounds and hollow, or nothing."""
    from test_study import tunnelling_inputs

    from fieldflow import study

    crossings, observables, samplers = tunnelling_inputs()
    if case == "smoke":  # several points at one L, every sampler crossing
        free = {"lam": 0.0, "s": 1.0}
        crossings = pd.concat(
            [
                crossings.assign(crossings=50, bound=math.nan),
                crossings.assign(**free, crossings=80, bound=math.nan),
            ]
        )
        observables = pd.concat([observables, observables.assign(**free)])
        samplers = pd.concat([samplers, samplers.assign(**free)])
    table = study.tunnelling(crossings, observables, samplers)
    edges = np.linspace(-1.5, 1.5, 61)
    density = np.exp(-((edges[:-1] - 1.0) ** 2) * 8) + np.exp(-((edges[:-1] + 1.0) ** 2) * 8)
    histograms = pd.concat(
        [
            pd.DataFrame(
                {
                    "L": L,
                    "s": s,
                    "lam": lam,
                    "sampler": sampler,
                    "bin_low": edges[:-1],
                    "bin_high": edges[1:],
                    "density": density,
                }
            )
            for L, s, lam in POINTS
            for sampler in ("hmc", "cnf", "cluster")
        ]
    )
    if case == "empty":
        table, histograms = table.iloc[:0], histograms.iloc[:0]
    for name, fig in {
        "tunnelling": plots.tunnelling(table),
        "magnetization_histograms": plots.magnetization_histograms(histograms),
    }.items():
        assert_saved(fig, tmp_path / name)
    if case == "broken":
        labels = plots.tunnelling(table).axes[0].get_legend_handles_labels()[1]
        assert "cluster: no crossing, lower bound" in labels


def test_every_registered_figure_draws_and_tells_its_lines_apart() -> None:
    """Each entry of the registry draws from inputs by the names it gives, and no two
    lines of a panel's legend share colour, marker, line style and fill."""
    inputs = study_inputs()
    for name, spec in plots.FIGURES.items():
        fig = spec.draw(*(inputs[key] for key in spec.inputs))
        assert isinstance(fig, Figure), name
        for ax in fig.axes:
            styles = legend_styles(ax)
            assert len(set(styles)) == len(styles), (name, ax.get_title(), styles)


def test_training_lines_differ_in_colour_and_marker() -> None:
    """Twelve lines, three flows at four points: the flow sets the colour, the point the
    marker, so every pair of lines differs in both together."""
    fig = plots.training_curves(histories(["realnvp", "nsf", "cnf"], POINTS_4))
    for ax in fig.axes:
        pairs = [style[:2] for style in legend_styles(ax)]
        assert len(pairs) == 12 and len(set(pairs)) == 12, pairs
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "cnf, L=6 s=-4 λ=6.975" in labels


def test_ess_at_largest_lattice_takes_the_first_largest_point() -> None:
    fig = plots.ess_at_largest_lattice(histories(["realnvp", "cnf"], POINTS_4))
    (ax,) = fig.axes
    assert ax.get_title().endswith("L=10 s=-4 λ=5.5")
    assert ax.get_legend_handles_labels()[1] == ["realnvp", "cnf"]
    tied = histories(["cnf"], POINTS_4[:3])  # two points at L = 8: the first one
    assert plots.ess_at_largest_lattice(tied).axes[0].get_title().endswith("L=8 s=-4 λ=8")


def test_panels_titled_by_symbol() -> None:
    fig = plots.tau_int(observables_table(["hmc"], ["phi2", "susceptibility", "binder"]))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    names = ("phi2", "susceptibility", "binder")
    assert titles == [plots.OBSERVABLE_LABELS[name] for name in names]
    assert titles[0] == r"$\langle\phi^2\rangle$" and "U_4" in titles[2]


def test_figure_names_leave_out_transfer_without_its_table() -> None:
    names = plots.figure_names()
    assert "transfer" not in names and names[0] == "training"
    assert plots.figure_names(["transfer"]) == list(plots.FIGURES)


def test_every_figure_has_a_caption_and_every_caption_a_figure(root: Path) -> None:
    captions = {path.stem for path in (root / "workflow" / "report").glob("*.rst")}
    assert captions - {"workflow"} == set(plots.FIGURES)


def test_cost_figure_stars_each_beta_where_the_flow_wins() -> None:
    """A U(1) study at one L has a crossover verdict per β: a star at each β where the flow
    is decidedly cheaper than every baseline, none where undecided."""
    rows = []
    for beta, hmc in ((1.0, 0.06), (4.0, 0.4), (6.0, 2.0)):
        for sampler, kind_, cost in (("hmc", "mcmc", hmc), ("gauge", "flow", 0.01)):
            rows.append(
                {
                    "L": 8,
                    "beta": beta,
                    "sampler": sampler,
                    "kind": kind_,
                    "seconds_per_independent": cost,
                    "seconds_per_independent_error": 0.001,
                    "cost_1e4": cost,
                    "cost_1e6": cost,
                }
            )
    verdicts = {1.0: ("crossover", 8.0), 4.0: ("undecided", math.nan), 6.0: ("crossover", 8.0)}
    crossover = pd.DataFrame(
        [
            [beta, "gauge", "hmc", "seconds_per_independent", first, 8.0, True, verdict]
            for beta, (verdict, first) in verdicts.items()
        ],
        columns=[
            "beta",
            "sampler",
            "baseline",
            "cost",
            "first_L",
            "largest_L",
            "reliable",
            "verdict",
        ],
    )
    ax = plots.cost_per_sample(pd.DataFrame(rows), crossover).axes[0]
    stars = [line for line in ax.lines if line.get_marker() == "*"]
    assert sorted(x for line in stars for x in line.get_xdata()) == [1.0, 6.0]
    assert sorted(y for line in stars for y in line.get_ydata()) == [0.01, 0.01]
