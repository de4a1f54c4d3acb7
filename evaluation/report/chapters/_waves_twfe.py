r"""Static TWFE over all three waves and why it misleads (private; see ``waves``).

:func:`naive_twfe` fits the one regression an analyst might run on the whole 2010-2024
municipal panel, coded as absorbing (``first_treated``) and with the switching trial status,
with the Goodman-Bacon decomposition of the first and the de Chaisemartin-D'Haultfoeuille
weights of the second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation.estimators.bacon import BaconDecomposition, bacon_decomposition
from evaluation.estimators.did import fit_two_way
from evaluation.estimators.results import normal_inference
from evaluation.estimators.twfe_weights import TWFEWeights, twfe_weights
from evaluation.panel import Panel
from evaluation.report.chapters._wave_truth import WaveTruth
from evaluation.report.chapters.common import EFFECT_COLUMNS, overall_row
from evaluation.report.study import MUNICIPAL_FILE, MUNICIPAL_OUTCOME, EstimateSpec, Study

#: The municipal panel's 0/1 trial status (1 in the months a municipality ran a wave).
TRIAL_STATUS = "treated"


@dataclass
class NaiveTWFE:
    """Static TWFE over all waves and its diagnostics (:func:`naive_twfe`).

    Attributes
    ----------
    table
        Two rows: the coefficient with the absorbing coding (``first_treated`` as the
        cohort) and with the switching status.
    bacon
        Goodman-Bacon decomposition of the absorbing one.
    weights
        De Chaisemartin-D'Haultfoeuille weights of the switching one.
    """

    table: pd.DataFrame
    bacon: BaconDecomposition
    weights: TWFEWeights

    def bacon_table(self) -> pd.DataFrame:
        """Return the decomposition by comparison type (``type`` as a column)."""
        return self.bacon.by_type().reset_index()

    def weights_table(self) -> pd.DataFrame:
        """One row summarising the weights: counts and sums by sign, the two σ measures."""
        w = self.weights
        return pd.DataFrame([{
            "twfe": w.twfe, "treated_cells": len(w.table), "negative_cells": w.n_negative,
            "negative_sum": w.negative_sum, "positive_cells": w.n_positive,
            "positive_sum": w.positive_sum, "sigma_fe": w.sigma_fe,
            "underline_sigma_fe": w.underline_sigma_fe}])


def balanced_panel(data: pd.DataFrame, unit: str = "municipality", time: str = "t"
                   ) -> tuple[pd.DataFrame, int]:
    """Keep the units observed in every period; the frame and the number of units dropped."""
    periods = data.groupby(unit)[time].nunique()
    complete = periods.index[periods == data[time].nunique()]
    return data[data[unit].isin(complete)], int((periods < data[time].nunique()).sum())


def naive_twfe(study: Study, outcome: str = MUNICIPAL_OUTCOME) -> NaiveTWFE:
    r"""Fit static TWFE on the whole 2010-2024 panel, coded as absorbing and as switching.

    Notes
    -----
    Both rows regress :math:`Y_{it}` on unit and month effects and one treatment
    indicator: :math:`D_{it} = 1[t \ge G_i]` with :math:`G_i` = ``first_treated``
    (absorbing: a municipality stays "treated" after its wave ended), or the trial status.
    The first is compared with the true average effect over all months after
    :math:`G_i`, the second with the true average over the trial months,
    :math:`\sum_w n_w m_w \tau_w / \sum_w n_w m_w` (:math:`n_w` municipalities of wave
    :math:`w`, :math:`m_w` months, :math:`\tau_w` its true ATT). ``estimator="twfe"``
    refuses the switching status, so its coefficient and clustered standard error come from
    :func:`~evaluation.estimators.did.fit_two_way` directly; the TWFE weights reproduce
    the same coefficient.
    """
    data, dropped = balanced_panel(study.municipal)
    note = (f"{dropped} municipalities not observed in every month left out" if dropped
            else "")
    truth = WaveTruth.of(study, outcome)
    spec = EstimateSpec(f"municipalities: {outcome}, all waves", MUNICIPAL_FILE,
                        "municipality", "t", "first_treated", outcome, 0,
                        study.municipal_cluster, None,
                        {"estimator": "twfe", "aggregate": "simple"})
    absorbing = overall_row(spec.run(study.data_dir))
    cohort_panel = Panel(data, unit="municipality", time="t", outcome=outcome,
                         cohort="first_treated", never_treated=0,
                         cluster=study.municipal_cluster)
    status_panel = Panel(data, unit="municipality", time="t", outcome=outcome,
                         status=TRIAL_STATUS, cluster=study.municipal_cluster)
    status = status_panel.status_wide()[status_panel.unit_codes, status_panel.time_codes]
    fit = fit_two_way(status_panel, status.astype(float)[:, None])
    weights = twfe_weights(status_panel)
    rows = [
        {"coding": "absorbing: treated from first_treated on",
         **{c: float(absorbing[c]) for c in EFFECT_COLUMNS},
         "true_att": truth.first_treated(),
         "note": "; ".join(filter(None, ["every month after a municipality's first wave "
                                         "counts as treated", note])),
         "command": spec.command(study.data_dir)},
        {"coding": f"switching: status column {TRIAL_STATUS}",
         **normal_row(float(fit.params[0]), float(fit.std_errors[0])),
         "true_att": truth.trial_months(),
         "note": "; ".join(filter(None, ["estimator twfe refuses a status that switches off: "
                                         "coefficient of the same regression", note])),
         "command": ""},
    ]
    return NaiveTWFE(pd.DataFrame(rows), bacon_decomposition(cohort_panel), weights)


def normal_row(estimate: float, std_error: float) -> dict[str, float]:
    """Estimate, standard error, normal 95 % interval and p-value as table columns."""
    limits = normal_inference(np.array([estimate]), np.array([std_error]), 0.05)
    return {"estimate": estimate, "std_error": std_error,
            "ci_lower": float(limits["ci_lower"][0]), "ci_upper": float(limits["ci_upper"][0]),
            "p_value": float(limits["p_value"][0])}
