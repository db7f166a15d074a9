# Paths and parameters shared by the rules.

import fieldflow.plots

STUDY_TABLES = {
    name: f"results/tables/{name}.csv"
    for name in (
        "reweighting",
        "correlators",
        "agreement",
        "scaling",
        "exponents",
        "crossover",
        "tunnelling",
        "magnetization_histograms",
    )
}

# With transfer_baseline, every point with init_from is also trained from scratch.
TRANSFERRED = list(INIT_FROM) if config["transfer_baseline"] else []
# The figures of fieldflow.plots.FIGURES, the transfer figure only with a transfer table.
FIGURE_NAMES = fieldflow.plots.figure_names(["transfer"] if TRANSFERRED else [])
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
    return {**p.columns(), "name": p.name}


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


def per_ensemble(kind):
    """One of rule observables' tables for every sampler and point, e.g. kind ".correlator"."""
    return expand(
        f"results/observables/{{sampler}}/{{point}}{kind}.csv", sampler=SAMPLERS, point=POINTS
    )


# Thermodynamic integration of log Z (config free_energy): point key -> its path.
INTEGRATION_PATHS = fieldflow.config.integration_paths(config)


def integration_node(wildcards):
    """The point of one node of an integration path, as rule mcmc's params point."""
    node = INTEGRATION_PATHS[wildcards.point].node(wildcards.node)
    return {"L": POINTS[wildcards.point].L, "s": node.s, "lam": node.lam}


def integration_ensembles():
    """Point key -> node name -> ensemble of every integration path."""
    return {
        key: {node.name: f"results/integration/{key}/{node.name}.zarr" for node in path.nodes()}
        for key, path in INTEGRATION_PATHS.items()
    }
