# Paths and parameters shared by the rules.

FIGURE_NAMES = [
    "training",
    "acceptance_ess",
    "tau_int",
    "observables",
    "configurations",
    "families_vs_L",
    "ess_vs_seconds",
]
FIGURES = expand("results/figures/{name}.{ext}", name=FIGURE_NAMES, ext=["png", "pdf"])


def point_params(wildcards):
    p = POINTS[wildcards.point]
    return {"L": p.L, "s": p.s, "lam": p.lam, "name": p.name}


def ensembles(wildcards=None):
    return expand("results/ensembles/{sampler}/{point}.zarr", sampler=SAMPLERS, point=POINTS)


def init_model(wildcards):
    """The smaller-lattice model a point's flow starts from (config `init_from`), if any."""
    source = INIT_FROM.get(wildcards.point)
    if source is None:
        return {}
    return {"init": f"results/models/{wildcards.flow}/{source}.pt"}
