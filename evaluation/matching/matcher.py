r"""The :func:`match` front end: one call from a unit-level table to a comparison group."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from evaluation.errors import (
    ConvergenceWarning,
    EvaluationWarning,
    InvalidOptionError,
    MatchingError,
    NoControlsInStratumError,
    NoMatchesError,
    UnmatchedUnitsWarning,
)
from evaluation.matching._covariates import (
    Covariates,
    build_covariates,
    check_score_covariates,
    require_columns,
    score_covariate_problem,
    stratum_codes,
    treatment_indicator,
)
from evaluation.matching._weights import weights_from_matches, weights_from_subclasses
from evaluation.matching.cem import Cutpoints, cem_subclasses
from evaluation.matching.distance import (
    OnNonconvergence,
    covariate_coordinates,
    penalized_propensity_score,
    propensity_score,
)
from evaluation.matching.nearest import MatchOrder, NearestProblem, nearest_neighbour
from evaluation.matching.optimal import optimal_matching
from evaluation.matching.result import MatchResult
from evaluation.matching.weighting import entropy_balance, ipw_att_weights
from evaluation.messages import fmt, fmt_list
from evaluation.options import (
    DEFAULT_RANDOM_SEED,
    check_caliper,
    check_count,
    check_flag,
    check_option,
    check_seed,
)

Method = Literal["nearest", "optimal", "cem", "ebal", "ipw"]
Discard = Literal["none", "both", "control", "treated"]
SCORE_DISTANCES = ("logit", "probit")
COVARIATE_DISTANCES = ("mahalanobis", "robust_mahalanobis", "euclidean", "scaled_euclidean")


def match(
    data: pd.DataFrame,
    *,
    treatment: str,
    covariates: Sequence[str],
    unit: str | None = None,
    method: Method = "nearest",
    distance: str | Sequence[float] | np.ndarray | pd.Series = "logit",
    ratio: int = 1,
    replace: bool = False,
    caliper: float | Mapping[str, float] | None = None,
    std_caliper: bool = True,
    exact: Sequence[str] | None = None,
    order: MatchOrder | None = None,
    mahalanobis: Sequence[str] | None = None,
    discard: Discard = "none",
    cutpoints: Mapping[str, Cutpoints] | Cutpoints | None = None,
    moments: int = 1,
    weights: str | None = None,
    seed: int | None = None,
    on_nonconvergence: OnNonconvergence = "error",
) -> MatchResult:
    r"""Build a matched or reweighted comparison group for the ATT.

    Parameters
    ----------
    data
        One row per unit (municipality or person); never modified.
    treatment
        Binary column: 1 (or True) for treated units, 0 for potential controls.
    covariates
        Columns to balance (and, by default, to model or measure distance on). Categorical
        columns are expanded to indicators.
    unit
        Column of unit ids (the data index when omitted).
    method
        ``"nearest"`` (greedy nearest neighbour), ``"optimal"`` (minimum total distance),
        ``"cem"`` (coarsened exact), ``"ebal"`` (entropy balancing) or ``"ipw"`` (inverse
        probability weights).
    distance
        ``"logit"`` or ``"probit"`` propensity score; ``"mahalanobis"``,
        ``"robust_mahalanobis"``, ``"euclidean"`` or ``"scaled_euclidean"`` on the
        covariates; or a user score (a column name or one number per unit).
    ratio
        Controls per treated unit.
    replace
        Whether a control may be matched to several treated units.
    caliper
        A number: maximum score difference (for score distances). A mapping: ``{"distance":
        w, "column": w, ...}`` for the score and numeric covariates. Widths are in standard
        deviations (over units not discarded) unless ``std_caliper=False``.
    std_caliper
        Whether caliper widths are in standard deviations.
    exact
        Columns to match exactly on (for example ELY region, size class, wave).
    order
        Order in which treated units choose: ``"largest"`` score first (default with a score),
        ``"smallest"``, ``"random"`` (uses ``seed``) or ``"data"`` (default otherwise).
    mahalanobis
        Columns for Mahalanobis-distance matching within the score caliper (MatchIt's
        ``mahvars``).
    discard
        Drop units outside the common support of the score before matching: ``"both"``,
        ``"control"``, ``"treated"`` or ``"none"``.
    cutpoints
        Bins for ``method="cem"``: a rule (``"sturges"``), a number of bins or cut points,
        or a mapping per covariate.
    moments
        ``method="ebal"``: 1 balances means, 2 also variances (squares of non-binary
        covariates).
    weights
        Column of sampling weights (the propensity model and balance statistics use them).
    seed
        Seed of ``order="random"`` (default :data:`~evaluation.options.DEFAULT_RANDOM_SEED`,
        so a random-order match is reproducible by default; recorded in ``info["seed"]``).
    on_nonconvergence
        For a logit or probit score: ``"error"`` (default) stops, naming the covariate, when
        the fit cannot converge: before fitting for a categorical covariate with more levels
        than a tenth of the units or with levels holding only treated or only control units
        (:func:`~evaluation.matching._covariates.check_score_covariates`), after fitting for
        separation or non-convergence. ``"penalize"`` uses a ridge-penalised fit instead
        (:func:`~evaluation.matching.distance.penalized_propensity_score`), with a
        :class:`~evaluation.errors.ConvergenceWarning`.

    Returns
    -------
    MatchResult

    Notes
    -----
    Nearest-neighbour and optimal matching give treated units weight 1 and control :math:`j`
    the weight :math:`\sum_{i: j\in M_i} 1/|M_i|` (rescaled to the number of matched
    controls), as MatchIt does; see :mod:`evaluation.matching.nearest` for the algorithm and
    :mod:`evaluation.matching.cem`, :mod:`evaluation.matching.weighting` for the others.

    Raises
    ------
    TreatmentNotBinaryError
        If the treatment is not 0/1 or one group is absent.
    NoControlsInStratumError
        If an exact stratum has treated units but no controls.
    NoMatchesError
        If no treated unit gets a match (the message says why).
    InfeasibleBalanceError
        If entropy balancing cannot reproduce the treated moments.
    MatchingError, InvalidOptionError, MissingColumnError
        For other bad input.
    """
    check_option("method", method, Method)
    check_option("discard", discard, Discard)
    check_option("on_nonconvergence", on_nonconvergence, OnNonconvergence)
    check_flag("replace", replace)
    check_flag("std_caliper", std_caliper)
    if order is not None:
        check_option("order", order, MatchOrder)
    seed = DEFAULT_RANDOM_SEED if check_seed("seed", seed) is None else seed
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    if not covariates:
        raise InvalidOptionError("covariates must name at least one column to balance.")
    check_count("ratio", ratio, 1)
    for name, width in (dict(caliper) if isinstance(caliper, Mapping)
                        else {"distance": caliper}).items():
        check_caliper("caliper" if name == "distance" else f"caliper[{name!r}]", width)
    if moments not in (1, 2):
        raise InvalidOptionError(f"moments={moments!r} must be 1 (means) or 2 (and variances).")
    _check_method_options(method, ratio=ratio, replace=replace, caliper=caliper, exact=exact,
                          order=order, mahalanobis=mahalanobis, cutpoints=cutpoints,
                          moments=moments, on_nonconvergence=on_nonconvergence)
    treated = treatment_indicator(data, treatment)
    ids = _unit_ids(data, unit)
    base = _sampling_weights(data, weights)
    balance_covs = build_covariates(data, covariates)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score, coords, distance_name = _distance(data, covariates, distance, method, treated,
                                                 base, mahalanobis, on_nonconvergence)
    for record in caught:  # issued again under the caller's filters, and recorded
        warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
    recorded = [" ".join(str(r.message).split()) for r in caught
                if issubclass(r.category, EvaluationWarning)]
    discarded = _discard(discard, score, treated)
    if order is None:
        order = "largest" if (score is not None and coords is None) or mahalanobis else "data"
    elif order in ("largest", "smallest") and score is None:
        raise InvalidOptionError(f"order={order!r} needs a propensity or user score; with "
                                 f"distance={distance_name!r} use order='data' or 'random'.")
    eligible = ~discarded
    strata, labels = (None, []) if not exact else stratum_codes(data, list(exact))
    if strata is not None:
        _check_strata(strata, labels, treated, eligible)

    subclass = np.full(len(data), -1, dtype=np.int64)
    pairs = pd.DataFrame({"treated_unit": pd.Series([], dtype=object),
                          "control_unit": pd.Series([], dtype=object),
                          "rank": pd.Series([], dtype=int)})
    reason = np.full(len(data), "", dtype=object)
    reason[discarded & treated] = f"outside the common support of the score (discard={discard!r})"
    if method in ("nearest", "optimal"):
        cal, cov_values, cov_widths = _calipers(data, caliper, std_caliper, score, eligible)
        problem = NearestProblem(treated, eligible, strata, score, coords, cal, cov_values,
                                 cov_widths, int(ratio), bool(replace), order,
                                 np.random.default_rng(seed))
        if method == "optimal":
            if replace:
                raise InvalidOptionError("method='optimal' matches without replacement; use "
                                         "method='nearest' with replace=True instead.")
            t_index, found = optimal_matching(problem)
        else:
            t_index, found = nearest_neighbour(problem)
        w = weights_from_matches(len(data), t_index, found)
        got = (found >= 0).any(axis=1)
        why = ("no available control within the caliper" if caliper is not None
               else "no control left in its exact stratum" if exact else "no control left")
        reason[t_index[~got & eligible[t_index]]] = why
        rows, cols = np.nonzero(found >= 0)
        if not replace:
            pair_id = np.cumsum(got) - 1
            subclass[t_index[got]] = pair_id[got]
            subclass[found[rows, cols]] = pair_id[rows]
        pairs = pd.DataFrame({"treated_unit": ids[t_index[rows]],
                              "control_unit": ids[found[rows, cols]], "rank": cols + 1})
        _report_unmatched(found, t_index, reason, ratio)
    elif method == "cem":
        subclass = cem_subclasses(data, covariates, treated, eligible, cutpoints)
        w = weights_from_subclasses(subclass, treated)
        reason[treated & eligible & (subclass < 0)] = "no control in its coarsened stratum"
        _report_unmatched(None, np.flatnonzero(treated), reason, 1)
    elif method == "ipw":
        if score is None:
            raise InvalidOptionError("method='ipw' needs a propensity score: distance='logit', "
                                     "'probit' or a user score in (0, 1).")
        if ((score <= 0) | (score >= 1)).any():
            raise MatchingError("method='ipw' needs scores strictly between 0 and 1; the user "
                                "score is not a probability.")
        w = np.where(eligible, ipw_att_weights(score, treated), 0.0)
    else:
        moments_matrix, names = _moment_matrix(balance_covs, moments)
        w = entropy_balance(moments_matrix[eligible], treated[eligible], names,
                            None if base is None else base[eligible])
        w = _fill(eligible, w)
        if base is not None:  # the balancing weights include the sampling weights: divide out
            w = np.where(base > 0, w / np.where(base > 0, base, 1.0), 0.0)

    units = pd.DataFrame({
        "unit": ids, "treated": treated, "weight": w,
        "subclass": pd.arrays.IntegerArray(subclass + 1, subclass < 0),
        "distance": score if score is not None else np.full(len(data), np.nan),
        "discarded": discarded, "reason": reason,
    })
    info = {"method": method, "distance": distance_name, "ratio": ratio if method in (
        "nearest", "optimal") else None, "replace": replace if method == "nearest" else None,
        "caliper": caliper, "exact": list(exact) if exact else None,
        "order": order if method == "nearest" else None, "mahalanobis": mahalanobis,
        "discard": discard if discard != "none" else None,
        "seed": seed if order == "random" and method == "nearest" else None}
    if recorded:
        info["warnings"] = recorded
    return MatchResult(units, pairs, method, distance_name, balance_covs, base, data, info)


def _check_method_options(method: str, **given) -> None:
    """Reject options that the chosen method would silently ignore."""
    defaults = {"ratio": 1, "replace": False, "caliper": None, "exact": None, "order": None,
                "mahalanobis": None, "cutpoints": None, "moments": 1,
                "on_nonconvergence": "error"}
    applies = {"nearest": {"ratio", "replace", "caliper", "exact", "order", "mahalanobis",
                           "on_nonconvergence"},
               "optimal": {"ratio", "caliper", "exact", "mahalanobis", "on_nonconvergence"},
               "cem": {"cutpoints"}, "ebal": {"moments"}, "ipw": {"on_nonconvergence"}}[method]
    unused = [k for k, v in given.items()
              if k not in applies and v not in (defaults[k], [], ())]
    if unused:
        hint = (" For cem, add exact variables to the covariates (categoricals are matched "
                "exactly)." if method == "cem" and "exact" in unused else "")
        raise InvalidOptionError(f"method={method!r} does not use {', '.join(unused)}; leave "
                                 f"{'them' if len(unused) > 1 else 'it'} unset or choose a "
                                 f"method that does.{hint}")


def _fill(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(mask))
    out[mask] = values
    return out


def _unit_ids(data: pd.DataFrame, unit: str | None) -> np.ndarray:
    if unit is None:
        ids = data.index.to_numpy()
    else:
        require_columns(data, [unit], "unit")
        ids = data[unit].to_numpy()
        if data[unit].isna().any():
            raise MatchingError(f"unit column {unit!r} has missing ids; every row needs one.")
    duplicated = pd.Index(ids).duplicated()
    if duplicated.any():
        raise MatchingError(
            f"unit ids must be unique (one row per unit) but {int(duplicated.sum())} repeat, "
            f"for example {fmt(ids[duplicated][0])}. Matching works on a unit-level table; reduce "
            "a long panel first, e.g. with evaluation.matching.outcome_trajectories().")
    return ids


def _sampling_weights(data: pd.DataFrame, column: str | None) -> np.ndarray | None:
    if column is None:
        return None
    require_columns(data, [column], "weights")
    values = pd.to_numeric(data[column], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all() or (values < 0).any() or values.sum() <= 0:
        raise MatchingError(f"weights column {column!r} must hold finite, non-negative numbers "
                            "with a positive total.")
    return values


def _distance(data: pd.DataFrame, covariates: list[str], distance, method: str,
              treated: np.ndarray, base: np.ndarray | None, mahalanobis: Sequence[str] | None,
              on_nonconvergence: str = "error"
              ) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """Score (for order, calipers, common support) and metric coordinates, with a label."""
    no_discard = np.zeros(len(data), dtype=bool)
    if method in ("cem", "ebal"):
        return None, None, None
    if isinstance(distance, str) and distance in SCORE_DISTANCES:
        score = _propensity(data, covariates, distance, treated, base, on_nonconvergence)
        label = distance
    elif isinstance(distance, str) and distance in COVARIATE_DISTANCES:
        if mahalanobis:
            raise InvalidOptionError("mahalanobis=[...] matches within a propensity-score "
                                     "caliper; it needs distance='logit' or 'probit'.")
        x = build_covariates(data, covariates, indicator_scale=1 / np.sqrt(2))
        return None, covariate_coordinates(x.values, treated, no_discard, distance,
                                           x.binary), distance
    else:
        score, label = _user_score(data, distance), "user score"
    coords = None
    if mahalanobis:
        x = build_covariates(data, list(mahalanobis), indicator_scale=1 / np.sqrt(2))
        coords = covariate_coordinates(x.values, treated, no_discard, "mahalanobis", x.binary)
    return score, coords, label


def _propensity(data: pd.DataFrame, covariates: list[str], link: str, treated: np.ndarray,
                base: np.ndarray | None, on_nonconvergence: str) -> np.ndarray:
    """Propensity score, checked before the fit (fast) for categoricals it cannot fit."""
    if on_nonconvergence != "penalize":
        check_score_covariates(data, covariates, treated, base)
    elif (found := score_covariate_problem(data, covariates, treated, base)) is not None:
        design = build_covariates(data, covariates, drop_first=True)
        warnings.warn(f"{found[1]}; as asked (on_nonconvergence='penalize') the {link} scores "
                      "come from a ridge-penalised fit, which shrinks every coefficient "
                      "towards zero.", ConvergenceWarning, stacklevel=4)
        return penalized_propensity_score(design.values, treated, link, base)
    design = build_covariates(data, covariates, drop_first=True)
    return propensity_score(design.values, treated, link, base, names=design.names,
                            on_nonconvergence=on_nonconvergence)


def _user_score(data: pd.DataFrame, distance) -> np.ndarray:
    if isinstance(distance, str):
        if distance not in data.columns:
            raise InvalidOptionError(
                f"distance={distance!r} is neither a distance "
                f"({', '.join(SCORE_DISTANCES + COVARIATE_DISTANCES)}) nor a column of the data "
                "holding a user score.")
        column, distance = distance, data[distance]
    else:
        column = None
    values = pd.Series(np.asarray(distance, dtype=object).ravel())
    numbers = pd.to_numeric(values, errors="coerce")
    text = values.notna() & numbers.isna() & ~values.map(lambda v: isinstance(v, bool))
    if text.any() or values.map(lambda v: isinstance(v, bool)).any():
        bad = values[text | values.map(lambda v: isinstance(v, bool))]
        what = f"column {column!r}" if column is not None else "the user score"
        raise MatchingError(
            f"distance: {what} must hold numbers (one score per unit) but holds "
            f"{fmt_list(pd.unique(bad))} ({len(bad)} value{'s' * (len(bad) > 1)}); convert it "
            "to numbers, or use distance='logit' to fit a propensity score.")
    score = numbers.to_numpy(dtype=float)
    if len(score) != len(data) or not np.isfinite(score).all():
        problem = "" if np.isfinite(score).all() else " with missing or infinite ones"
        raise MatchingError(f"a user score needs one finite number per unit ({len(data)}); got "
                            f"{len(score)} values{problem}.")
    return score


def _discard(option: str, score: np.ndarray | None, treated: np.ndarray) -> np.ndarray:
    r"""Units outside the common support of the score (MatchIt's ``discard``).

    ``"both"`` drops units below :math:`\max(\min_1, \min_0)` or above
    :math:`\min(\max_1, \max_0)`; ``"control"`` controls outside the treated range;
    ``"treated"`` treated units outside the control range.
    """
    if option == "none":
        return np.zeros(len(treated), dtype=bool)
    if score is None:
        raise InvalidOptionError(f"discard={option!r} needs a propensity or user score.")
    lo1, hi1 = score[treated].min(), score[treated].max()
    lo0, hi0 = score[~treated].min(), score[~treated].max()
    if option == "both":
        return (score < max(lo0, lo1)) | (score > min(hi0, hi1))
    if option == "control":
        return ~treated & ((score < lo1) | (score > hi1))
    return treated & ((score < lo0) | (score > hi0))


def _calipers(data: pd.DataFrame, caliper, std: bool, score: np.ndarray | None,
              eligible: np.ndarray) -> tuple[float | None, np.ndarray | None, np.ndarray | None]:
    """Caliper on the score and on covariates, converted to raw units."""
    if caliper is None:
        return None, None, None
    spec = dict(caliper) if isinstance(caliper, Mapping) else {"distance": caliper}
    for name, width in spec.items():
        if not isinstance(width, (int, float, np.number)) or not width > 0:
            raise InvalidOptionError(f"caliper width for {name!r} must be a positive number; "
                                     f"got {width!r}.")
    on_score = spec.pop("distance", None)
    if on_score is not None and score is None:
        raise InvalidOptionError(
            "a caliper on the distance needs a propensity or user score; with a covariate "
            "metric give calipers per covariate, e.g. caliper={'unemployment_rate': 0.5}.")
    width = None
    if on_score is not None:
        width = float(on_score) * (np.std(score[eligible], ddof=1) if std else 1.0)
    if not spec:
        return width, None, None
    require_columns(data, list(spec), "caliper")
    values = np.column_stack([pd.to_numeric(data[c], errors="coerce").to_numpy(float)
                              for c in spec])
    for j, name in enumerate(spec):
        if not np.isfinite(values[:, j]).all() or np.isin(values[:, j], (0.0, 1.0)).all():
            raise InvalidOptionError(f"caliper covariate {name!r} must be numeric, complete and "
                                     "not binary; match exactly on categories with exact=[...].")
    widths = np.array([float(v) for v in spec.values()])
    if std:
        widths *= values[eligible].std(axis=0, ddof=1)
    return width, values, widths


def _check_strata(strata: np.ndarray, labels: list[str], treated: np.ndarray,
                  eligible: np.ndarray) -> None:
    n = len(labels)
    n1 = np.bincount(strata[treated & eligible], minlength=n)
    n0 = np.bincount(strata[~treated & eligible], minlength=n)
    empty = np.flatnonzero((n1 > 0) & (n0 == 0))
    if len(empty):
        listed = "; ".join(f"{labels[s]} ({n1[s]} treated)" for s in empty[:5])
        raise NoControlsInStratumError(
            f"{len(empty)} exact-matching stratum{'s' * (len(empty) > 1)} "
            f"{'have' if len(empty) > 1 else 'has'} treated units but no controls: {listed}"
            f"{' ...' if len(empty) > 5 else ''}. Coarsen or drop an exact variable, or remove "
            "those treated units before matching.")


def _report_unmatched(found: np.ndarray | None, t_index: np.ndarray, reason: np.ndarray,
                      ratio: int) -> None:
    unmatched = reason[t_index] != ""
    if unmatched.all():
        why = pd.Series(reason[t_index]).value_counts()
        listed = "; ".join(f"{n} {r}" for r, n in why.items())
        raise NoMatchesError(f"no treated unit got a match ({listed}). Widen the caliper, "
                             "drop exact variables or use replace=True.")
    if unmatched.any():
        why = pd.Series(reason[t_index][unmatched]).value_counts()
        listed = "; ".join(f"{n} {r}" for r, n in why.items())
        warnings.warn(f"{int(unmatched.sum())} of {len(t_index)} treated units were dropped "
                      f"without a match: {listed}. The estimand is then the ATT of the matched "
                      "treated units only.", UnmatchedUnitsWarning, stacklevel=3)
    if found is not None and ratio > 1:
        short = ((found >= 0).sum(axis=1) < ratio) & ~unmatched
        if short.any():
            warnings.warn(f"{int(short.sum())} treated units got fewer than {ratio} controls.",
                          UnmatchedUnitsWarning, stacklevel=3)


def _moment_matrix(covs: Covariates, moments: int) -> tuple[np.ndarray, list[str]]:
    values, names = covs.values, list(covs.names)
    if moments == 2:
        cont = ~covs.binary
        values = np.column_stack([values, values[:, cont] ** 2])
        names += [f"{n}^2" for n, c in zip(covs.names, cont, strict=True) if c]
    return values, names
