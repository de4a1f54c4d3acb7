"""Speed and peak memory of individual-level nearest-neighbour matching (and MatchIt).

A jobseeker-like unit table (age, gender, education, months unemployed before, one of the
15 ELY regions; one person in six treated, selected on all of them) is matched on a logit
propensity score with ``evaluation.matching.match``. Every configuration runs in a fresh
process; it reports the time of ``match()`` and of ``result.balance()`` and the peak
resident memory before and after matching (``ru_maxrss``: the table alone, then the
table plus matching). Run ``python benchmarks/matching.py`` (``--quick`` for a smoke run at
a tenth of the size; ``--treated`` and ``--controls`` to change it).

When ``Rscript`` is on PATH and the R package MatchIt loads, R's
``matchit(..., method = "nearest", exact = ~ region + gender)`` is timed on a smaller table
(``--r-treated``/``--r-controls``, written to a temporary CSV that both sides read) and so is
ours on the same file; the ratio and the share of treated units given the same control are
printed. Without R that part is skipped with a message (CI never runs R).

Target (2-core reference machine): 200,000 treated x 1,000,000 potential controls, 1:1
nearest neighbour on the logit score with exact strata region x gender, in under 60 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _measure import measure

TARGET_SECONDS = 60.0
COVARIATES = ["age", "gender", "education", "months_unemployed", "region"]
EXACT = ["region", "gender"]

#: The 15 ELY centres with rough shares of jobseekers.
ELY = {"Uusimaa": 0.31, "Varsinais-Suomi": 0.08, "Satakunta": 0.04, "Hame": 0.06,
       "Pirkanmaa": 0.09, "Kaakkois-Suomi": 0.045, "Etela-Savo": 0.025,
       "Pohjois-Savo": 0.045, "Pohjois-Karjala": 0.03, "Keski-Suomi": 0.05,
       "Etela-Pohjanmaa": 0.03, "Pohjanmaa": 0.025, "Pohjois-Pohjanmaa": 0.08,
       "Kainuu": 0.015, "Lappi": 0.035}
EDUCATION = ("basic", "upper_secondary", "vocational_tertiary", "university")

#: name -> extra options of match() (all on the logit score of COVARIATES).
CONFIGS = {
    "exact 1:1": dict(exact=EXACT),
    "exact 1:1, caliper 0.1": dict(exact=EXACT, caliper=0.1),
    "exact 2:1": dict(exact=EXACT, ratio=2),
    "exact 1:1, replace": dict(exact=EXACT, replace=True),
    "no exact 1:1": dict(),
}

R_MATCHIT = textwrap.dedent("""
    suppressPackageStartupMessages(library(MatchIt))
    args <- commandArgs(trailingOnly = TRUE)
    if (args[3] == "general") {
      # MatchIt's general greedy matcher nn_matchC instead of the nn_matchC_vec fast path
      # of 4.5.x (see tests/reference/README.md; same switch as matchit_reference.R)
      ns <- asNamespace("MatchIt")
      general <- function(treat, ord, ratio, discarded, reuse.max, distance, distance_mat,
                          ex, caliper.dist, caliper.covs, caliper.covs.mat, mahcovs,
                          antiexactcovs, unit.id, verbose) {
        get("nn_matchC", ns)(treat, ord, ratio, discarded, reuse.max, distance, distance_mat,
                             ex, caliper.dist, caliper.covs, caliper.covs.mat, mahcovs,
                             antiexactcovs, unit.id, verbose)
      }
      environment(general) <- ns
      if (exists("nn_matchC_dispatch", ns)) assignInNamespace("nn_matchC_dispatch", general,
                                                              "MatchIt")
    }
    d <- read.csv(args[1], stringsAsFactors = TRUE)
    rownames(d) <- d$person
    started <- proc.time()[["elapsed"]]
    m <- matchit(treated ~ age + gender + education + months_unemployed + region, data = d,
                 method = "nearest", distance = "glm", exact = ~ region + gender)
    seconds <- proc.time()[["elapsed"]] - started
    started <- proc.time()[["elapsed"]]
    s <- summary(m)
    balance_seconds <- proc.time()[["elapsed"]] - started
    mm <- m$match.matrix
    score <- setNames(m$distance, rownames(d))
    write.csv(data.frame(treated = rownames(mm), control = mm[, 1],
                         gap = abs(score[rownames(mm)] - score[mm[, 1]])),
              args[2], row.names = FALSE)
    cat(sprintf('{"seconds": %.4f, "balance_seconds": %.4f, "matched": %d}\\n', seconds,
                balance_seconds, sum(m$weights > 0)))
""")

def jobseekers(n_treated: int, n_controls: int, seed: int = 1) -> pd.DataFrame:
    """A unit table of jobseekers; the ``n_treated`` with the largest latent index are treated.

    Treatment is more likely for the older, the long unemployed, the less educated and in
    some regions (a logistic index with logistic noise), so matching has work to do.
    """
    rng = np.random.default_rng(seed)
    n = n_treated + n_controls
    shares = np.array(list(ELY.values()))
    region = rng.choice(len(ELY), n, p=shares / shares.sum())
    female = rng.random(n) < 0.45
    age = np.clip(np.round(rng.normal(41, 12, n)), 18, 64).astype(np.int64)
    education = rng.choice(len(EDUCATION), n, p=[0.25, 0.45, 0.15, 0.15])
    months = np.minimum(rng.geometric(1 / (4 + 0.25 * (age - 18)), n) - 1, 120)
    region_shift = rng.normal(0, 0.3, len(ELY))
    index = (0.015 * (age - 41) + 0.03 * months - 0.25 * education + 0.1 * female
             + region_shift[region] + rng.logistic(size=n))
    treated = np.zeros(n, dtype=np.int8)
    treated[np.argpartition(-index, n_treated - 1)[:n_treated]] = 1
    return pd.DataFrame({
        "person": np.arange(1, n + 1),
        "treated": treated,
        "age": age,
        "gender": np.where(female, "female", "male"),
        "education": np.asarray(EDUCATION)[education],
        "months_unemployed": months.astype(np.int64),
        "region": np.asarray(list(ELY))[region],
    })


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run_job(config: str, n_treated: int, n_controls: int, csv: str = "",
            pairs_out: str = "") -> dict:
    """One timed match in this process (what ``--job`` runs in a fresh one)."""
    from evaluation.matching import match

    data = pd.read_csv(csv) if csv else jobseekers(n_treated, n_controls)
    base_gb = _peak_gb()
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. treated units dropped by the caliper
        result = match(data, treatment="treated", covariates=COVARIATES, unit="person",
                       **CONFIGS[config])
    seconds = time.perf_counter() - started
    match_gb = _peak_gb()
    started = time.perf_counter()
    balance = result.balance()
    balance_seconds = time.perf_counter() - started
    if pairs_out:
        first = result.matches.loc[result.matches["rank"] == 1, ["treated_unit", "control_unit"]]
        score = pd.Series(result.units["distance"].to_numpy(), index=result.units["unit"])
        first["gap"] = np.abs(score.loc[first["treated_unit"]].to_numpy()
                              - score.loc[first["control_unit"]].to_numpy())
        first.to_csv(pairs_out, index=False)
    kept = result.weights > 0
    return {"seconds": seconds, "balance_seconds": balance_seconds, "base_gb": base_gb,
            "match_gb": match_gb, "peak_gb": _peak_gb(),
            "matched_treated": int((kept & result.treated).sum()),
            "matched_controls": int((kept & ~result.treated).sum()),
            "max_abs_smd_after": float(balance["smd_after"].abs().max()),
            "max_abs_smd_before": float(balance["smd_before"].abs().max())}


def spawn(config: str, n_treated: int, n_controls: int, csv: str = "",
          pairs_out: str = "") -> dict:
    """Run :func:`run_job` in a fresh Python process and return its JSON."""
    command = [sys.executable, __file__, "--job", config, "--treated", str(n_treated),
               "--controls", str(n_controls), "--csv", csv, "--pairs-out", pairs_out]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{config!r} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def matchit_available() -> str | None:
    """None when R's MatchIt can be used, else the reason it cannot."""
    if shutil.which("Rscript") is None:
        return "Rscript is not on PATH"
    done = subprocess.run(["Rscript", "-e", "suppressPackageStartupMessages(library(MatchIt))"
                           "; cat(as.character(packageVersion('MatchIt')))"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return f"the R package MatchIt does not load ({done.stderr.strip()[-200:]})"
    return None


def _run_matchit(script: Path, csv: Path, pairs: Path, matcher: str) -> dict:
    whole = measure(["Rscript", str(script), str(csv), str(pairs), matcher])
    r = json.loads(whole["stdout"].strip().splitlines()[-1])
    return {**r, "process_seconds": whole["seconds"], "peak_gb": whole["peak_gb"]}


def _pairs(path: Path, treated: str, control: str) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={treated: str, control: str})
    return frame.rename(columns={treated: "treated", control: "control"}).set_index("treated")


def compare_matchit(n_treated: int, n_controls: int) -> None:
    """Time R MatchIt and ours on the same CSV; print the ratios and the agreement."""
    print(f"\nR MatchIt vs ours: {n_treated:,} treated x {n_controls:,} controls, 1:1 nearest "
          "on the logit score, exact = region + gender (same CSV for both)")
    reason = matchit_available()
    if reason:
        print(f"  skipped: {reason}.")
        return
    version = subprocess.run(["Rscript", "-e", "cat(as.character(packageVersion('MatchIt')),"
                              " R.version$major, R.version$minor)"], capture_output=True,
                             text=True).stdout.split()
    print(f"  MatchIt {version[0]}, R {'.'.join(version[1:])}. 'as shipped' uses MatchIt's "
          "fast matcher for a score without mahvars; 'nn_matchC' its general greedy matcher "
          "(the algorithm ours reproduces; tests/reference/README.md)")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        csv, script = tmp / "jobseekers.csv", tmp / "matchit.R"
        jobseekers(n_treated, n_controls, seed=2).to_csv(csv, index=False)
        script.write_text(R_MATCHIT)
        ours = spawn("exact 1:1", n_treated, n_controls, str(csv), str(tmp / "ours.csv"))
        mine = _pairs(tmp / "ours.csv", "treated_unit", "control_unit")
        rows = [("ours", ours["seconds"], ours["balance_seconds"], ours["peak_gb"], mine)]
        for matcher, label in (("shipped", "MatchIt as shipped"), ("general", "MatchIt nn_matchC")):
            r = _run_matchit(script, csv, tmp / f"{matcher}.csv", matcher)
            rows.append((label, r["seconds"], r["balance_seconds"], r["peak_gb"],
                         _pairs(tmp / f"{matcher}.csv", "treated", "control")))
    print(f"  {'':20s} {'match':>9s} {'balance':>9s} {'peak GB':>8s} {'speed-up':>9s} "
          f"{'same ctrl':>9s} {'mean |gap|':>11s}")
    for label, seconds, balance, peak, pairs in rows:
        same = (pairs["control"].reindex(mine.index) == mine["control"]).mean()
        speed = "" if label == "ours" else f"{seconds / ours['seconds']:8.1f}x"
        print(f"  {label:20s} {seconds:7.2f} s {balance:7.2f} s {peak:8.2f} {speed:>9s} "
              f"{same:9.1%} {pairs['gap'].mean():11.2e}")
    print("  (match: the matchit() / match() call alone; balance: summary() / balance(); peak: "
          "whole process; speed-up: R time / our time; same ctrl: share of treated units with "
          "our first control; mean |gap|: mean absolute score difference within pairs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--treated", type=int, default=None, help="default 200,000")
    parser.add_argument("--controls", type=int, default=None, help="default 1,000,000")
    parser.add_argument("--r-treated", type=int, default=None, help="default 20,000")
    parser.add_argument("--r-controls", type=int, default=None, help="default 100,000")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20,000 x 100,000 (R: 2,000 x 10,000)")
    parser.add_argument("--no-r", action="store_true", help="skip the MatchIt comparison")
    parser.add_argument("--job", choices=list(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--csv", default="", help=argparse.SUPPRESS)
    parser.add_argument("--pairs-out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    n_treated = args.treated or 200_000 // scale
    n_controls = args.controls or 1_000_000 // scale
    if args.job:
        print(json.dumps(run_job(args.job, n_treated, n_controls, args.csv, args.pairs_out)))
        return

    print(f"Nearest-neighbour matching on a logit score of {', '.join(COVARIATES)}: "
          f"{n_treated:,} treated x {n_controls:,} potential controls (one fresh process "
          f"each; target {TARGET_SECONDS:.0f} s for match() with exact strata)")
    header = (f"  {'configuration':24s} {'match()':>9s} {'of target':>9s} {'balance()':>10s} "
              f"{'treated':>9s} {'controls':>9s} {'max|SMD|':>9s} {'table GB':>9s} "
              f"{'peak GB':>8s}")
    print(header)
    print("  " + "-" * (len(header) - 2))
    results = {}
    for config in CONFIGS:
        run = results[config] = spawn(config, n_treated, n_controls)
        print(f"  {config:24s} {run['seconds']:7.1f} s {run['seconds'] / TARGET_SECONDS:9.0%} "
              f"{run['balance_seconds']:8.1f} s {run['matched_treated']:9,} "
              f"{run['matched_controls']:9,} {run['max_abs_smd_after']:9.3f} "
              f"{run['base_gb']:9.2f} {run['peak_gb']:8.2f}")
    worst = max(results[c]["seconds"] for c in CONFIGS if "exact" in CONFIGS[c])
    before = results["exact 1:1"]["max_abs_smd_before"]
    print(f"  (max|SMD| before matching {before:.3f}; table GB = peak memory after building "
          "the table, before matching)")
    print(f"Slowest configuration with exact strata: {worst:.1f} s -> "
          f"{'meets' if worst < TARGET_SECONDS else 'MISSES'} the {TARGET_SECONDS:.0f} s target")
    if args.no_r:
        return
    r_treated = args.r_treated or 20_000 // scale
    r_controls = args.r_controls or 100_000 // scale
    compare_matchit(r_treated, r_controls)


if __name__ == "__main__":
    main()
