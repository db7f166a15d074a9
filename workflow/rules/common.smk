# Paths and parameters shared by the rules.

FIGURE_NAMES = [
    "training",
    "acceptance_ess",
    "tau_int",
    "observables",
    "configurations",
    "families_vs_L",
    "ess_vs_seconds",
    "scaling",
    "cost",
    "agreement",
    "correlators",
    "tunnelling",
    "magnetization_histograms",
]
STUDY_TABLES = {
    name: f"results/tables/{name}.csv"
    for name in (
        "reweighting", "correlators", "agreement", "scaling", "exponents", "crossover",
        "tunnelling", "magnetization_histograms",
    )
}

# With transfer_baseline, every point with init_from is also trained from scratch.
TRANSFERRED = list(INIT_FROM) if config["transfer_baseline"] else []
if TRANSFERRED:
    FIGURE_NAMES.append("transfer")
FIGURES = expand("results/figures/{name}.{ext}", name=FIGURE_NAMES, ext=["png", "pdf"])


def figure_outputs():
    """The figures, PNGs marked for `snakemake --report` with their captions."""
    outputs = []
    for name in FIGURE_NAMES:
        png = f"results/figures/{name}.png"
        caption = f"../report/{name}.rst"
        outputs.append(report(png, caption=caption, category="Figures"))
        outputs.append(f"results/figures/{name}.pdf")
    return outputs


def point_dict(key):
    p = POINTS[key]
    return {"L": p.L, "s": p.s, "lam": p.lam, "name": p.name}


def point_params(wildcards):
    return point_dict(wildcards.point)


def ensembles(wildcards=None):
    return expand("results/ensembles/{sampler}/{point}.zarr", sampler=SAMPLERS, point=POINTS)


def init_model(wildcards):
    """The smaller-lattice model a point's flow starts from (config `init_from`), if any."""
    source = INIT_FROM.get(wildcards.point)
    if source is None:
        return {}
    return {"init": f"results/models/{wildcards.flow}/{source}.pt"}


def transfer_runs(wildcards=None):
    """The (flow, transferred point) pairs of the transfer table, with their inputs."""
    return [
        {
            "flow": flow,
            "point": point_dict(point),
            "transferred": f"results/training/{flow}/{point}.csv",
            "scratch": f"results/training/{flow}/{point}.scratch.csv",
            "source_model": f"results/models/{flow}/{INIT_FROM[point]}.pt",
        }
        for flow in FLOWS
        for point in TRANSFERRED
    ]

