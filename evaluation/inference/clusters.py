r"""Checks and labels shared by the few-cluster inference options (``se="cr2"``/``"wild"``).

:func:`few_cluster_messages` is the one check every estimator runs: cluster-robust
inference with normal critical values over-rejects when few clusters are treated or one
cluster carries most of the treated weight (MacKinnon and Webb 2017, 2018; Conley and Taber
2011). :func:`warn_few_clusters` issues the messages as :class:`FewClustersWarning` and
returns them for ``EstimationResult.warnings``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from evaluation.errors import FewClustersWarning

if TYPE_CHECKING:
    from evaluation.panel import Panel

#: Fewer treated clusters than this trigger the warning.
MIN_TREATED_CLUSTERS = 6
#: A cluster holding more than this share of the treated units' weight triggers it too.
MAX_TREATED_SHARE = 0.5
#: What each inference option should switch to when the check fires. The recommendation
#: rests on ``benchmarks/few_cluster.py`` (20 clusters, 300-400 replications): with 4 of 20
#: clusters treated, CR2 with Bell-McCaffrey df covers 0.94-0.96 for TWFE, SA, BJS and
#: two-stage and CS's cluster jackknife 0.93-0.95, where normal CR0 intervals cover
#: 0.84-0.89; with 2 treated clusters CR2 is conservative (0.98-1.00), the jackknife covers
#: only 0.82-0.87, and randomization inference loses its guarantee when the treated
#: clusters are noisier than the others (0.87).
ADVICE = {
    "analytic": "use se='cr2' (CR2 with Bell-McCaffrey degrees of freedom, which covered "
                "0.94-0.96 with 4 of 20 clusters treated in the package's simulations), or "
                "the wild cluster bootstrap (se='wild') or randomization inference",
    "cr2": "CR2 with Bell-McCaffrey df is the recommended inference here; with 1 or 2 "
           "treated clusters no method is reliable and CR2 is conservative",
    "wild": "the wild cluster bootstrap covered only 0.91-0.94 with 4 of 20 clusters "
            "treated in the package's simulations (and is very conservative for BJS and "
            "two-stage); se='cr2' (Bell-McCaffrey df) is recommended",
    "cs": "use se='cr3' (the cluster jackknife with t(G-1) intervals, which covered "
          "0.93-0.95 with 4 of 20 clusters treated in the package's simulations) or "
          "randomization inference (se='randomization' on the command line)",
    "cs-jackknife": "the cluster jackknife is the recommended inference here, but with 1 or "
                    "2 treated clusters it covered only 0.82-0.87: treat its intervals as "
                    "too narrow",
}


def few_cluster_messages(cluster: np.ndarray, treated: np.ndarray,
                         weights: np.ndarray | None = None, *, se: str = "analytic",
                         labels: np.ndarray | None = None) -> list[str]:
    r"""Describe why clustered inference may be unreliable (empty list when it is fine).

    Parameters
    ----------
    cluster
        ``(n_units,)`` integer cluster codes of the units (0..G-1).
    treated
        ``(n_units,)`` booleans: units ever treated.
    weights
        ``(n_units,)`` unit weights (None: equal).
    se
        The inference in use; the advice names what to switch to.
    labels
        Optional cluster labels indexed by code, used in the message.

    Returns
    -------
    list of str
        One message per problem found.

    Notes
    -----
    With :math:`G_1` clusters containing treated units the check fires when
    :math:`G_1 < 6`, or when one cluster's share
    :math:`\sum_{i \in c, D_i = 1} w_i / \sum_{D_i = 1} w_i` of the treated weight exceeds
    one half.
    """
    cluster = np.asarray(cluster)
    treated = np.asarray(treated, dtype=bool)
    w = np.ones(cluster.size) if weights is None else np.asarray(weights, dtype=float)
    total = np.bincount(cluster[treated], weights=w[treated],
                        minlength=int(cluster.max()) + 1 if cluster.size else 0)
    if total.sum() <= 0:
        return []
    advice = ADVICE.get(se, ADVICE["analytic"])
    out = []
    n_treated, n_clusters = int((total > 0).sum()), int(np.unique(cluster).size)
    if n_treated < MIN_TREATED_CLUSTERS:
        out.append(f"only {n_treated} of {n_clusters} clusters contain treated units (fewer "
                   f"than {MIN_TREATED_CLUSTERS}): clustered standard errors with normal "
                   f"critical values over-reject; {advice}.")
    share = total / total.sum()
    top = int(np.argmax(share))
    if share[top] > MAX_TREATED_SHARE:
        name = top if labels is None else labels[top]
        out.append(f"cluster {name} holds {100 * share[top]:.0f} % of the treated units' "
                   f"weight (more than half): clustered inference rests on it; {advice}.")
    return out


def warn_few_clusters(cluster: np.ndarray, treated: np.ndarray,
                      weights: np.ndarray | None = None, *, se: str = "analytic",
                      labels: np.ndarray | None = None, stacklevel: int = 3) -> list[str]:
    """Issue :func:`few_cluster_messages` as warnings and return them for a result.

    The returned strings are prefixed with the warning class name, as
    ``EstimationResult.warnings`` records warnings.
    """
    messages = few_cluster_messages(cluster, treated, weights, se=se, labels=labels)
    for message in messages:
        warnings.warn(message, FewClustersWarning, stacklevel=stacklevel)
    return [f"{FewClustersWarning.__name__}: {m}" for m in messages]


def warn_panel_clusters(panel: Panel, se: str, *, stacklevel: int = 4) -> list[str]:
    """Run :func:`warn_few_clusters` on ``panel``'s units (treated: ever treated)."""
    treated = panel.status_wide().any(axis=1)
    cluster = (np.arange(panel.n_units) if panel.unit_cluster is None
               else np.asarray(panel.unit_cluster))
    labels = None if panel.unit_cluster is None else np.asarray(panel.clusters)
    return warn_few_clusters(cluster, treated, panel.unit_weights, se=se, labels=labels,
                             stacklevel=stacklevel)
