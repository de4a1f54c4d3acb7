"""Independent NumPy re-derivation of csdid's numbers (balanced panel, unit weights).

Stand-alone harness (not collected by pytest). It re-implements, from the formulas
documented in ``tests/reference/README.md``, the ATT(g,t) estimates, their influence
functions and analytic SEs (``reg``, ``ipw`` and ``dr``, never-treated and not-yet-treated
controls, ``varying`` base period, no anticipation), the four aggregations and the
Wald pre-test -- using only NumPy -- and compares them with ``csdid`` on the panel
simulated by ``csdid_probe.simulate_panel``. Run it in the csdid venv::

    /tmp/csdidvenv/bin/python tests/reference/cs_crosscheck.py

It prints the maximum absolute discrepancy per quantity; all should be ~1e-12.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

import numpy as np
from scipy.stats import chi2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from csdid_probe import simulate_panel


def logit_irls(X, D, tol=1e-8, maxiter=100):
    """Unweighted logistic regression by IRLS (statsmodels' GLM default tolerances)."""
    beta = np.zeros(X.shape[1])
    mu = (D + 0.5) / 2  # statsmodels' IRLS start value
    eta = np.log(mu / (1 - mu))
    dev_old = np.inf
    for _ in range(maxiter):
        w = mu * (1 - mu)
        z = eta + (D - mu) / w
        beta = np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (w * z))
        eta = X @ beta
        mu = 1 / (1 + np.exp(-eta))
        dev = -2 * np.sum(D * np.log(mu) + (1 - D) * np.log(1 - mu))
        if abs(dev - dev_old) <= tol * (abs(dev) + 0.1):
            break
        dev_old = dev
    return mu


def reg_panel(dy, D, X):
    n = len(D)
    c = D == 0
    b = np.linalg.solve(X[c].T @ X[c], X[c].T @ dy[c])
    fit = X @ b
    w1 = D.astype(float)
    att = np.mean(w1 * dy) / np.mean(w1) - np.mean(w1 * fit) / np.mean(w1)
    wols = 1 - D
    XpX_inv = np.linalg.inv((wols[:, None] * X).T @ X / n)
    alr = (wols * (dy - fit))[:, None] * X @ XpX_inv
    inf_treat = (w1 * dy - w1 * np.mean(w1 * dy) / np.mean(w1)) / np.mean(w1)
    inf_cont1 = w1 * fit - w1 * np.mean(w1 * fit) / np.mean(w1)
    M1 = np.mean(w1[:, None] * X, axis=0)
    inf_cont = (inf_cont1 + alr @ M1) / np.mean(w1)
    return att, inf_treat - inf_cont


def ps_parts(D, X):
    n = len(D)
    ps = np.minimum(logit_irls(X, D), 1 - 1e-6)
    trim = np.ones(n, bool)
    trim[D == 0] = ps[D == 0] < 0.995
    H = np.linalg.inv(X.T @ ((ps * (1 - ps))[:, None] * X)) * n
    alr_ps = ((D - ps)[:, None] * X) @ H
    return ps, trim, alr_ps


def ipw_panel(dy, D, X):
    ps, trim, alr_ps = ps_parts(D, X)
    wt = trim * D
    wc = trim * ps * (1 - D) / (1 - ps)
    et, ec = np.mean(wt * dy) / np.mean(wt), np.mean(wc * dy) / np.mean(wc)
    inf_t = (wt * dy - wt * et) / np.mean(wt)
    M2 = np.mean((wc * (dy - ec))[:, None] * X, axis=0)
    inf_c = (wc * dy - wc * ec + alr_ps @ M2) / np.mean(wc)
    return et - ec, inf_t - inf_c


def dr_panel(dy, D, X):
    n = len(D)
    ps, trim, alr_ps = ps_parts(D, X)
    c = D == 0
    b = np.linalg.solve(X[c].T @ X[c], X[c].T @ dy[c])
    r = dy - X @ b
    wt = trim * D
    wc = trim * ps * (1 - D) / (1 - ps)
    et, ec = np.mean(wt * r) / np.mean(wt), np.mean(wc * r) / np.mean(wc)
    wols = 1.0 - D
    alr_or = ((wols * r)[:, None] * X) @ np.linalg.inv((wols[:, None] * X).T @ X / n)
    inf_t = (wt * r - wt * et - alr_or @ np.mean(wt[:, None] * X, axis=0)) / np.mean(wt)
    M2 = np.mean((wc * (r - ec))[:, None] * X, axis=0)
    M3 = np.mean(wc[:, None] * X, axis=0)
    inf_c = (wc * r - wc * ec + alr_ps @ M2 - alr_or @ M3) / np.mean(wc)
    return et - ec, inf_t - inf_c


EST = {"reg": reg_panel, "ipw": ipw_panel, "dr": dr_panel}


def att_gt(Y, G, X, tlist, method, control):
    n, T = Y.shape
    glist = np.sort(np.unique(G[G > 0]))
    glist = glist[glist > tlist[0]]
    cells, atts, IF = [], [], []
    for g in glist:
        pret_g = np.flatnonzero(tlist < g)[-1]  # last pre-treatment index
        for ti in range(T - 1):  # varying base: t = tlist[ti+1]
            tn = tlist[ti + 1]
            base = ti if tn < g else pret_g
            thr = tlist[max(ti, base) + 1]  # = tn here
            C = (G == 0) if control == "nevertreated" else ((G == 0) | ((G > thr) & (G != g)))
            m = (G == g) | C
            dy = Y[m, ti + 1] - Y[m, base]
            Xc = X[min(ti + 1, base)][m]  # covariates of the earlier period
            a, inf = EST[method](dy, (G[m] == g).astype(float), Xc)
            full = np.zeros(n)
            full[m] = n / m.sum() * inf  # rescale to the full sample
            cells.append((g, tn))
            atts.append(a)
            IF.append(full)
    return np.array(cells), np.array(atts), np.column_stack(IF)


def se_of(inf):
    return np.sqrt(np.mean(inf**2) / len(inf))


def wif(keep, pg_cells, w_ind, G, gvals):
    """Influence of estimated weights: columns = kept cells."""
    pk = pg_cells[keep]
    ind = w_ind[:, None] * (G[:, None] == gvals[keep][None, :]) - pk[None, :]
    return ind / pk.sum() - np.outer(ind.sum(axis=1), pk / pk.sum() ** 2)


def aggregate(cells, att, IF, G, w_ind=None):
    n = IF.shape[0]
    w_ind = np.ones(n) if w_ind is None else w_ind
    g, t = cells[:, 0], cells[:, 1]
    glist = np.unique(g)
    pgg = np.array([np.mean(w_ind * (G == gg)) for gg in glist])
    pg = pgg[np.searchsorted(glist, g)]
    out = {}

    def combo(idx, with_wif=True):
        w = pg[idx] / pg[idx].sum()
        inf = IF[:, idx] @ w
        if with_wif:
            inf = inf + wif(idx, pg, w_ind, G, g) @ att[idx]
        return float(att[idx] @ w), inf

    post = np.flatnonzero(g <= t)
    a, inf = combo(post)
    out["simple"] = (a, se_of(inf), None)

    ag, infg = [], []
    for gg in glist:
        idx = np.flatnonzero((g == gg) & (g <= t))
        a, inf = combo(idx, with_wif=False)
        ag.append(a)
        infg.append(inf)
    ag, infg = np.array(ag), np.column_stack(infg)
    wg = pgg / pgg.sum()
    inf_o = infg @ wg + wif(np.arange(len(glist)), pgg, w_ind, G, glist) @ ag
    out["group"] = (float(ag @ wg), se_of(inf_o), (ag, [se_of(c) for c in infg.T]))

    e = t - g
    eseq = np.unique(e)
    ae, infe = [], []
    for ee in eseq:
        a, inf = combo(np.flatnonzero(e == ee))
        ae.append(a)
        infe.append(inf)
    ae, infe = np.array(ae), np.column_stack(infe)
    pos = eseq >= 0
    out["dynamic"] = (
        float(ae[pos].mean()),
        se_of(infe[:, pos].mean(axis=1)),
        (ae, [se_of(c) for c in infe.T]),
    )

    tcal = np.unique(t[t >= glist.min()])
    tcal = np.array([tt for tt in tcal if np.any((t == tt) & (g <= t))])
    at, inft = [], []
    for tt in tcal:
        a, inf = combo(np.flatnonzero((t == tt) & (g <= t)))
        at.append(a)
        inft.append(inf)
    at, inft = np.array(at), np.column_stack(inft)
    out["calendar"] = (float(at.mean()), se_of(inft.mean(axis=1)), (at, [se_of(c) for c in inft.T]))
    return out


def wald(cells, att, IF):
    n = IF.shape[0]
    V = IF.T @ IF / n
    pre = np.flatnonzero(cells[:, 0] > cells[:, 1])
    pre = pre[np.diag(V)[pre] > 0]
    W = float(n * att[pre] @ np.linalg.solve(V[np.ix_(pre, pre)], att[pre]))
    return W, round(1 - chi2.cdf(W, len(pre)), 5)


def main():
    from csdid.att_gt import ATTgt

    df = simulate_panel()
    wide = df.pivot(index="id", columns="t", values="y").sort_index()
    tlist = wide.columns.to_numpy()
    first = df[df.t == tlist[0]].sort_values("id")
    Y, G = wide.to_numpy(), first.g.to_numpy()
    Xunit = np.column_stack([np.ones(len(G)), first.x.to_numpy()])
    X = [Xunit] * len(tlist)  # time-invariant covariate
    worst = 0.0
    for method in ("reg", "ipw", "dr"):
        for control in ("nevertreated", "notyettreated"):
            cells, att, IF = att_gt(Y, G, X, tlist, method, control)
            se = np.array([se_of(c) for c in IF.T])
            res = ATTgt(
                yname="y",
                tname="t",
                idname="id",
                gname="g",
                data=df,
                xformla="y ~ x",
                control_group=control,
            )
            res.fit(est_method=method, bstrap=False)
            r = res.results
            d = {
                "att": np.max(np.abs(att - np.asarray(r["att"]))),
                "se": np.max(np.abs(se - np.asarray(r["se"]))),
                "IF": np.max(np.abs(IF - res.MP["inffunc"]["inffunc"])),
            }
            W, Wp = wald(cells, att, IF)
            d["W"] = abs(W - res.MP["W"])
            d["Wpval"] = abs(Wp - res.MP["Wpval"])
            mine = aggregate(cells, att, IF, G)
            for typ in ("simple", "group", "dynamic", "calendar"):
                with contextlib.redirect_stdout(io.StringIO()):
                    res.aggte(typec=typ)
                a = res.atte
                d[f"{typ}.att"] = abs(mine[typ][0] - a["overall_att"])
                d[f"{typ}.se"] = abs(mine[typ][1] - a["overall_se"])
                if mine[typ][2] is not None:
                    d[f"{typ}.att_e"] = np.max(np.abs(mine[typ][2][0] - np.asarray(a["att_egt"])))
                    d[f"{typ}.se_e"] = np.max(
                        np.abs(np.asarray(mine[typ][2][1]) - np.asarray(a["se_egt"]).ravel())
                    )
            m = max(d.values())
            worst = max(worst, m)
            print(
                f"{method:3s}/{control:13s} max|diff|={m:.2e}  "
                + " ".join(f"{k}={v:.1e}" for k, v in d.items())
            )
    print(f"worst abs diff: {worst:.2e}")
    return 0 if worst < 1e-8 else 1


if __name__ == "__main__":
    sys.exit(main())
