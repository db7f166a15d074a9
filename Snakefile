# fieldflow: normalizing flows vs Markov chains for 2D lattice phi^4, one study per config.
#   snakemake --cores 2                                  # the default study
#   snakemake --cores 2 --configfile config/smoke.yaml   # a tiny one
import os
import re
import sys
from pathlib import Path

import fieldflow.config
import fieldflow.errors
from snakemake.utils import min_version

# The Snakemake this workflow is tested with; an older one stops here and says so.
min_version("9.27")

# envs/fieldflow.yaml installs this checkout by this path (pip expands it in the
# requirements that conda writes), wherever the working directory is; a value already set
# names another checkout.
os.environ.setdefault("FIELDFLOW_SOURCE", workflow.basedir)

# The default study, unless --configfile names another (whose keys then replace, not merge
# with, the defaults: anything it leaves out takes the schema's default).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


# Checked before any job runs: a typo, an impossible parameter or a lattice too large for
# this machine names its key here, one line per problem, and nothing runs.
try:
    fieldflow.config.validate(config, workflow.source_path("workflow/schemas/config.schema.yaml"))
    fieldflow.config.check_resources(config, "results")
except fieldflow.errors.FieldflowError as error:
    configfiles = workflow.config_settings.configfiles or ["config/config.yaml"]
    fieldflow.errors.report(error, where=", ".join(map(str, configfiles)))
    sys.exit(1)

POINTS = {p.key: p for p in fieldflow.config.points(config)}
INIT_FROM = fieldflow.config.init_sources(config)
FLOWS = list(config["flows"])
MCMC = list(config["mcmc"])
SAMPLERS = FLOWS + MCMC
USE_GPU = config["device"] == "cuda"


wildcard_constraints:
    point="|".join(map(re.escape, POINTS)) or "NONE",  # a key may hold "." or "+"
    flow="|".join(FLOWS) or "NONE",
    mcmc="|".join(MCMC) or "NONE",
    sampler="|".join(SAMPLERS) or "NONE",
    node=r"(lam|s)\d+",


# Cheap jobs stay on the submitting machine when an executor sends the rest to a cluster.
localrules:
    all,
    tables,
    figures,
    transfer,
    study,


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/flows.smk"
include: "workflow/rules/mcmc.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/free_energy.smk"


# The data products are targets too: a deleted ensemble or model is rebuilt by a plain
# rerun, even when the tables made from it are up to date.
rule all:
    default_target: True
    input:
        "results/tables/observables.csv",
        "results/tables/samplers.csv",
        STUDY_TABLES.values(),
        "results/tables/free_energy.csv",
        FIGURES,
        ensembles(),
        expand("results/models/{flow}/{point}.pt", flow=FLOWS, point=POINTS),
