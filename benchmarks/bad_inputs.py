"""Feed the workflow bad inputs and print what a user sees, as a Markdown table.

    python benchmarks/bad_inputs.py                       # config cases only (~2 min)
    python benchmarks/bad_inputs.py --study WORKDIR       # also corrupt a finished study

Config cases dry-run Snakemake on one broken config each. With ``--study``, WORKDIR holds
a finished smoke study (``snakemake --cores 2 --configfile config/smoke.yaml`` run there);
each file case copies its ``results/`` aside, damages one file and asks Snakemake for the
product that reads it. Every row gives the exit status, the ``fieldflow:`` line(s) and
whether a Python traceback was printed. Not a test: what a person would read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SMOKE = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
ONE = {"points": [{"L": 4, "s": -4.0, "lam": 8.0}], "flows": ["cnf"], "mcmc": ["hmc"]}


def with_(**changes) -> dict:
    return {**ONE, **changes}


def point(**entry) -> dict:
    return with_(points=[{"L": 4, "s": -4.0, "lam": 8.0, **entry}])


#: (what is wrong, config text or mapping)
CONFIGS: list[tuple[str, dict | str]] = [
    ("lam is NaN", "points: [{L: 4, s: -4.0, lam: .nan}]\n"),
    ("s is infinite", "points: [{L: 4, s: .inf, lam: 8.0}]\n"),
    ("L is 4.0", point(L=4.0)),
    (
        "L: 4 and L: 4.0 as two points",
        with_(points=[ONE["points"][0], {**ONE["points"][0], "L": 4.0}]),
    ),
    ("the same point twice", with_(points=ONE["points"] * 2)),
    (
        "two points with the same name",
        with_(
            points=[
                {"name": "a", "L": 4, "s": -4.0, "lam": 8.0},
                {"name": "a", "L": 8, "s": -4.0, "lam": 8.0},
            ]
        ),
    ),
    ("init_from names its own point", point(name="a", init_from="a")),
    ("init_from names no point", point(init_from="b")),
    (
        "init_from a larger lattice",
        with_(
            points=[
                {"name": "a", "L": 8, "s": -4.0, "lam": 8.0},
                {"L": 4, "s": -4.0, "lam": 8.0, "init_from": "a"},
            ]
        ),
    ),
    ("no samplers", with_(flows=[], mcmc=[])),
    ("unknown top-level key", with_(trainig={"steps": 10})),
    ("unknown key in a section", with_(hmc={"n_chainz": 3})),
    ("a removed key (hmc.enabled)", with_(hmc={"enabled": False})),
    ("unknown flow family", with_(flows=["glow"])),
    ("unknown Markov-chain baseline", with_(mcmc=["metropolis"])),
    (
        "odd L with checkerboard flows",
        with_(points=[{"L": 5, "s": -4.0, "lam": 8.0}], flows=["realnvp"]),
    ),
    ("negative lam", point(lam=-1.0)),
    ("lam = 0 with s <= 0", point(s=-1.0, lam=0.0)),
    ("L below 2", point(L=1)),
    ("a number as a word", point(s="minus four")),
    ("no training budget", with_(training={"steps": None})),
    ("even kernel_size", with_(flows=["realnvp"], realnvp={"kernel_size": 4})),
    ("negative HMC trajectory length", with_(hmc={"trajectory_length": -1})),
    ("unknown cluster variant", with_(mcmc=["cluster"], cluster={"variant": "heatbath"})),
    ("integer setting given as 8.0", with_(hmc={"n_chains": 8.0})),
    ("lattice too large for this machine's memory", point(L=4096)),
    ("points missing", with_(points=None) | {"points": None}),
    ("a point without lam", with_(points=[{"L": 4, "s": -4.0}])),
    ("config is not a mapping", "- just\n- a list\n"),
    ("malformed YAML", "points: [{L: 4, s: -4.0, lam: 8.0}\n"),
]


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def row(case: str, run: subprocess.CompletedProcess) -> str:
    out = run.stdout + run.stderr
    lines = [line for line in out.splitlines() if line.startswith("fieldflow:")]
    message = "<br>".join(line.replace("|", "\\|") for line in lines) or "(no fieldflow line)"
    traceback = "yes" if "Traceback" in out or 'File "' in out else "no"
    return f"| {case} | {run.returncode} | {traceback} | {message} |"


def config_rows(workdir: Path) -> list[str]:
    rows = []
    for case, config in CONFIGS:
        path = workdir / "bad.yaml"
        path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
        rows.append(row(case, snakemake(workdir, "-n", "--configfile", str(path))))
    return rows


def flip_byte(path: Path, offset_from_end: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) - offset_from_end] ^= 0x01
    path.write_bytes(bytes(data))


def chunk(store: Path, array: str) -> Path:
    return sorted(p for p in (store / array / "c").rglob("*") if p.is_file())[0]


def tamper_model(path: Path) -> None:
    """Change bytes inside a tensor of a torch zip, keeping the file's size."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = max(
            (i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size
        )
    data = bytearray(path.read_bytes())
    # The local header's name and extra lengths (torch pads the extra field to align data).
    name_length, extra_length = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    start = info.header_offset + 30 + name_length + extra_length
    for i in range(start, start + min(16, info.file_size)):
        data[i] ^= 0x55
    path.write_bytes(bytes(data))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def file_rows(study: Path, config: Path) -> list[str]:
    tiny, free = "L4_s-4_lam8", "L4_s1_lam0"
    cases: list[tuple[str, Callable[[Path], None], list[str]]] = [
        (
            "a bit flipped in a phi chunk",
            lambda r: flip_byte(chunk(r / f"ensembles/hmc/{tiny}.zarr", "phi")),
            ["-f", f"results/observables/hmc/{tiny}.csv"],
        ),
        (
            "a bit flipped in a proposal_log_weight chunk",
            lambda r: flip_byte(chunk(r / f"ensembles/cnf/{tiny}.zarr", "proposal_log_weight")),
            ["-f", f"results/observables/cnf/{tiny}.csv"],
        ),
        (
            "a phi chunk deleted",
            lambda r: chunk(r / f"ensembles/cluster/{free}.zarr", "phi").unlink(),
            ["-f", f"results/observables/cluster/{free}.csv"],
        ),
        (
            "an ensemble's metadata deleted",
            lambda r: (r / f"ensembles/hmc/{free}.zarr/zarr.json").unlink(),
            ["-f", f"results/observables/hmc/{free}.csv"],
        ),
        (
            "a model altered inside a tensor (same size and mtime)",
            lambda r: tamper_model(r / f"models/cnf/{tiny}.pt"),
            ["-f", f"results/ensembles/cnf/{tiny}.zarr"],
        ),
        (
            "a model file truncated",
            lambda r: (r / f"models/nsf/{tiny}.pt").write_bytes(
                (r / f"models/nsf/{tiny}.pt").read_bytes()[:100]
            ),
            ["-f", f"results/ensembles/nsf/{tiny}.zarr"],
        ),
        (
            "a checkpoint altered inside a tensor",
            lambda r: _tampered_checkpoint(r, "realnvp", tiny),
            ["-f", f"results/models/realnvp/{tiny}.pt"],
        ),
        (
            "an observables table of an older layout",
            lambda r: _old_table(r / f"observables/hmc/{tiny}.csv"),
            ["-f", "results/tables/observables.csv"],
        ),
    ]
    rows = []
    for case, damage, target in cases:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            shutil.copytree(study / "results", work / "results", symlinks=True)
            shutil.copytree(
                study / ".snakemake",
                work / ".snakemake",
                symlinks=True,
                ignore=shutil.ignore_patterns("conda", "singularity"),
            )
            damage(work / "results")
            # Only the damaged file's reader runs: the study may come from another checkout.
            run = snakemake(
                work,
                "--cores",
                "2",
                "--rerun-triggers",
                "mtime",
                *target,
                "--configfile",
                str(config),
            )
            rows.append(row(case, run))
    return rows


def _tampered_checkpoint(results: Path, flow: str, key: str) -> None:
    """A checkpoint of the right settings, then changed inside a tensor."""
    import torch

    from fieldflow.training import _write_checkpoint

    model = torch.load(results / f"models/{flow}/{key}.pt", weights_only=True)
    path = results / f"checkpoints/{flow}/{key}.pt"
    _write_checkpoint(path, {"model": model["state_dict"], "step": 1, "fingerprint": "x"})
    tamper_model(path)


def _old_table(path: Path) -> None:
    import pandas as pd

    pd.read_csv(path).drop(columns=["reliable", "reason"]).to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, help="workdir of a finished smoke study")
    args = parser.parse_args()
    print("| bad input | exit | traceback | what fieldflow prints |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for line in config_rows(Path(tmp)):
            print(line, flush=True)
    if args.study:
        config = args.study / "smoke.yaml"
        config.write_text(yaml.safe_dump(SMOKE))
        for line in file_rows(args.study.resolve(), config.resolve()):
            print(line, flush=True)


if __name__ == "__main__":
    main()
