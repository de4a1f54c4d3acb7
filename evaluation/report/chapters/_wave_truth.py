r"""The simulator's true effects behind the rows of the all-waves tables (private).

:class:`WaveTruth` reads ``truth_municipalities.parquet`` once and returns the truth of each
row of :func:`~evaluation.report.chapters.waves.all_wave_effects` and
:func:`~evaluation.report.chapters.waves.naive_twfe`; every value is NaN on real data (no
truth file or no scenario in the manifest) or when the simulator wrote no such row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation.report.study import Study
from evaluation.sources.trials import WAVES


@dataclass(frozen=True)
class WaveTruth:
    """True municipal effects of one outcome (``rows`` is None for real data)."""

    rows: pd.DataFrame | None

    @classmethod
    def of(cls, study: Study, outcome: str) -> WaveTruth:
        """Read the truth of ``outcome`` from the study's data directory (if synthetic)."""
        path = study.truth_file("municipalities")
        if not study.synthetic or not path.is_file():
            return cls(None)
        truth = pd.read_parquet(path)
        return cls(truth[truth["outcome"] == outcome].reset_index(drop=True))

    def _select(self, design: str, population: str, kind: str) -> pd.DataFrame:
        if self.rows is None:
            return pd.DataFrame(columns=["att", "n_units", "event_time"])
        rows = self.rows
        return rows[(rows["design"] == design) & (rows["population"] == population)
                    & (rows["kind"] == kind)]

    def overall(self, design: str, population: str = "treated") -> float:
        """Return the overall ATT of ``design`` and ``population`` (NaN if absent)."""
        rows = self._select(design, population, "overall")
        return float(rows["att"].iloc[0]) if len(rows) else float("nan")

    def units(self, design: str, population: str = "treated") -> int:
        """Return the number of municipalities behind an overall row (0 if absent)."""
        rows = self._select(design, population, "overall")
        return int(rows["n_units"].iloc[0]) if len(rows) else 0

    def after(self, number: int, first: int, last: int) -> float:
        r"""Mean true effect in months ``first``..``last`` after wave ``number`` ended.

        Notes
        -----
        The mean of the per-month rows (kind ``post_wave``, population ``post_wave``)
        :math:`\tau^{post}(E + k)` over :math:`k = first..last`; for the full ranges it
        equals the simulator's ``post_wave_1_12`` / ``post_wave_13_24`` rows, as every
        month averages the same municipalities.
        """
        rows = self._select(f"wave{number}", "post_wave", "post_wave")
        rows = rows[rows["event_time"].between(first, last)]
        return float(rows["att"].mean()) if len(rows) == last - first + 1 else float("nan")

    def added_design(self, number: int) -> str:
        """``wave{n}_added`` when the simulator wrote it (carry-over), else ``wave{n}``.

        Without carry-over what wave :math:`n` added equals its total effect in its window.
        """
        added = f"wave{number}_added"
        return added if len(self._select(added, "repeat", "overall")) else f"wave{number}"

    def repeat_and_first(self, number: int) -> tuple[float, float]:
        r"""Return what wave ``number`` added for repeat and for first-time municipalities.

        Notes
        -----
        First-timers are the wave's municipalities outside the ``repeat`` population; every
        municipality contributes the same months to an overall row, so with :math:`n` and
        :math:`n_r` municipalities
        :math:`\tau_{first} = (n\,\tau_{treated} - n_r\,\tau_{repeat})/(n - n_r)`.
        """
        design = self.added_design(number)
        repeat = self.overall(design, "repeat")
        n_all, n_repeat = self.units(design), self.units(design, "repeat")
        if n_all <= n_repeat:
            return repeat, float("nan")
        first = (n_all * self.overall(design) - n_repeat * repeat) / (n_all - n_repeat)
        return repeat, float(first)

    def first_treated(self) -> float:
        """Return the true ATT over all months after each municipality's first wave started."""
        return self.overall("first_treated")

    def trial_months(self) -> float:
        r""":math:`\sum_w n_w m_w \tau_w / \sum_w n_w m_w`, the true ATT over trial months."""
        mass = np.array([self.units(f"wave{w.number}") * w.n_months for w in WAVES], float)
        effects = np.array([self.overall(f"wave{w.number}") for w in WAVES])
        if mass.sum() == 0 or not np.isfinite(effects[mass > 0]).all():
            return float("nan")
        return float(mass[mass > 0] @ effects[mass > 0] / mass.sum())
