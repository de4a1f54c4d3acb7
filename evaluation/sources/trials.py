"""Facts about the three waves of the Finnish municipal employment trials.

The one place where wave dates, names and target-group rules live; the simulator, the
descriptive chapter and (later) the estimators read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation.errors import InvalidOptionError

#: Months an earnings-related allowance lasts (about 400 payment days).
ERA_MONTHS = 14


@dataclass(frozen=True)
class Wave:
    """One wave of the trials.

    Attributes
    ----------
    number
        1, 2 or 3.
    name
        Finnish name of the wave.
    start, end
        First and last calendar month in which the wave's municipalities ran the services.
    target_group
        Plain-language statement of who the trial served.
    """

    number: int
    name: str
    start: pd.Period
    end: pd.Period
    target_group: str

    @property
    def n_months(self) -> int:
        """Number of calendar months the wave ran (start and end month included)."""
        return (self.end - self.start).n + 1

    @property
    def label(self) -> str:
        """Short label such as ``"Wave 3 (2021M03–2024M12)"``."""
        return f"Wave {self.number} ({format_month(self.start)}–{format_month(self.end)})"


WAVES: tuple[Wave, ...] = (
    Wave(
        1,
        "Kuntakokeilu",
        pd.Period("2012-09", "M"),
        pd.Period("2015-12", "M"),
        "long-term unemployed: 500+ days of benefit or 12+ months of continuous unemployment",
    ),
    Wave(
        2,
        "Alueelliset kokeilut",
        pd.Period("2017-08", "M"),
        pd.Period("2018-12", "M"),
        "the hardest to employ: unemployed 12+ months (in Turku also all under 25)",
    ),
    Wave(
        3,
        "Työllisyyden kuntakokeilut",
        pd.Period("2021-03", "M"),
        pd.Period("2024-12", "M"),
        "unemployed and service participants without earnings-related allowance, "
        "all under 30s and all immigrants / foreign-language speakers",
    ),
)

#: First month of the synthetic municipal panel (t = 1) and its last month.
PANEL_START = pd.Period("2010-01", "M")
PANEL_END = pd.Period("2024-12", "M")


def wave(number: int) -> Wave:
    """Return the :class:`Wave` with the given number (1, 2 or 3)."""
    for w in WAVES:
        if w.number == number:
            return w
    raise InvalidOptionError(f"wave={number!r} does not exist; the trials had waves 1, 2 and 3.")


def format_month(period: pd.Period) -> str:
    """Format a monthly period the StatFin way, e.g. ``2021M03``."""
    return f"{period.year}M{period.month:02d}"


def month_index(period: pd.Period, origin: pd.Period = PANEL_START) -> int:
    """Return the 1-based month index of ``period`` counted from ``origin`` (origin -> 1)."""
    return (period - origin).n + 1


def in_target_group(wave_number: int, jobseeking: np.ndarray, duration: np.ndarray,
                    era_member: np.ndarray, age: np.ndarray, immigrant: np.ndarray
                    ) -> np.ndarray:
    """Whether each person meets wave ``wave_number``'s target-group rule in a month.

    Parameters
    ----------
    wave_number
        1, 2 or 3.
    jobseeking
        Unemployed or in employment services that month.
    duration
        Months of the running unemployment spell.
    era_member, age, immigrant
        Unemployment-fund membership, age in years and immigrant background.

    Returns
    -------
    numpy.ndarray
        Boolean mask.

    Notes
    -----
    Waves 1 and 2: jobseeking and unemployed for 12 months or more. Wave 3: jobseeking and
    either without a running earnings-related allowance (not a fund member, or the spell has
    lasted :data:`ERA_MONTHS` months or more), under 30, or an immigrant.
    """
    wave(wave_number)
    jobseeking = np.asarray(jobseeking, dtype=bool)
    duration = np.asarray(duration)
    if wave_number in (1, 2):
        return jobseeking & (duration >= 12)
    without_era = ~(np.asarray(era_member, dtype=bool) & (duration < ERA_MONTHS))
    return jobseeking & (without_era | (np.asarray(age) < 30) | np.asarray(immigrant, bool))
