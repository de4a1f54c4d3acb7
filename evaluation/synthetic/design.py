"""Synthetic geography of Finland and the assignment of municipalities to trial areas.

The design (municipalities, their sizes and structural unemployment, and which of them ran
which wave of the trial) is drawn once per ``design_seed``; outcomes are drawn on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from evaluation.errors import SimulationError
from evaluation.sources.trials import WAVES, month_index

#: ELY-centre regions: name, municipalities (out of 309), unemployment level relative to
#: the country, and an approximate centroid (km east, km north) used to define neighbours.
ELY_REGIONS: tuple[tuple[str, int, float, float, float], ...] = (
    ("Uusimaa", 28, 0.85, 380, 60),
    ("Varsinais-Suomi", 30, 0.95, 230, 110),
    ("Satakunta", 16, 1.05, 210, 250),
    ("Häme", 21, 1.05, 380, 170),
    ("Pirkanmaa", 26, 1.00, 320, 260),
    ("Kaakkois-Suomi", 18, 1.20, 520, 140),
    ("Etelä-Savo", 14, 1.10, 530, 280),
    ("Pohjois-Savo", 19, 1.10, 520, 400),
    ("Pohjois-Karjala", 13, 1.30, 650, 420),
    ("Keski-Suomi", 22, 1.15, 420, 360),
    ("Etelä-Pohjanmaa", 18, 0.80, 270, 400),
    ("Pohjanmaa", 24, 0.70, 220, 450),
    ("Pohjois-Pohjanmaa", 30, 1.10, 420, 650),
    ("Kainuu", 8, 1.35, 580, 620),
    ("Lappi", 22, 1.25, 450, 950),
)

#: Real regional centres (StatFin code, name, ELY region, labour force around 2010, relative
#: unemployment level within its region). Every other municipality is synthetic.
NAMED_CITIES: tuple[tuple[str, str, str, int, float], ...] = (
    ("KU091", "Helsinki", "Uusimaa", 340_000, 0.95),
    ("KU049", "Espoo", "Uusimaa", 150_000, 0.85),
    ("KU092", "Vantaa", "Uusimaa", 120_000, 1.10),
    ("KU837", "Tampere", "Pirkanmaa", 120_000, 1.25),
    ("KU564", "Oulu", "Pohjois-Pohjanmaa", 100_000, 1.10),
    ("KU853", "Turku", "Varsinais-Suomi", 95_000, 1.30),
    ("KU179", "Jyväskylä", "Keski-Suomi", 70_000, 1.15),
    ("KU297", "Kuopio", "Pohjois-Savo", 60_000, 1.00),
    ("KU398", "Lahti", "Häme", 58_000, 1.30),
    ("KU609", "Pori", "Satakunta", 40_000, 1.25),
    ("KU167", "Joensuu", "Pohjois-Karjala", 37_000, 1.10),
    ("KU286", "Kouvola", "Kaakkois-Suomi", 37_000, 1.05),
    ("KU405", "Lappeenranta", "Kaakkois-Suomi", 35_000, 1.05),
    ("KU905", "Vaasa", "Pohjanmaa", 34_000, 1.20),
    ("KU743", "Seinäjoki", "Etelä-Pohjanmaa", 31_000, 1.05),
    ("KU698", "Rovaniemi", "Lappi", 30_000, 1.00),
    ("KU491", "Mikkeli", "Etelä-Savo", 25_000, 1.05),
    ("KU205", "Kajaani", "Kainuu", 17_000, 1.05),
)

#: Population per member of the labour force (used for the 30,000-inhabitant rule).
POPULATION_PER_WORKER = 2.1
N_NEAREST = 24
N_NEIGHBOURS = 6

# Trial sizes for the full country (scaled with the number of municipalities).
WAVE1_AREAS, WAVE1_MUNICIPALITIES = 23, 62
WAVE3_AREAS, WAVE3_MUNICIPALITIES = 25, 118
WAVE3_MIN_POPULATION = 30_000
WAVE3_TOWN_APPLIES = 0.5  # probability that a town of 30,000-100,000 runs its own area
WAVE3_SMALL_MEMBER = 20_000  # municipalities that join an area after it meets the threshold
#: Wave 2 trials: name, anchor city, extra member municipalities (about 23 in all).
WAVE2_TRIALS: tuple[tuple[str, str, int], ...] = (
    ("Pirkanmaa", "Tampere", 3),
    ("Turku region", "Turku", 2),
    ("Kuopio region", "Kuopio", 2),
    ("Pori", "Pori", 1),
    ("Lapland municipalities", "Rovaniemi", 2),
    ("Pohjois-Karjala", "Joensuu", 2),
    ("Keski-Pohjanmaa", "<largest synthetic in Pohjanmaa>", 2),
    ("Keski-Suomi", "Jyväskylä", 1),
)
WAVE1_FORCED = ("Tampere", "Turku", "Lahti", "Kuopio")


@dataclass(frozen=True)
class Design:
    """Geography and trial assignment of a synthetic country.

    Attributes
    ----------
    municipalities
        One row per municipality (row position = municipality index): ``municipality``
        (code), ``name``, ``ely``, ``x``, ``y``, ``labour_force``, ``population``,
        ``unemployment_level`` (relative to the country), ``ltu_share``, ``foreign_share``,
        ``services_ratio``, ``other_ratio``, ``vacancy_ratio``, ``growth``.
    areas
        One row per trial area: ``wave``, ``area`` (id such as ``W3-07``), ``area_name``,
        ``anchor``, ``n_municipalities``, ``population``, ``area_z`` (standard normal draw
        scaled by the scenario's area heterogeneity).
    membership
        ``(n_municipalities, 3)`` row index into ``areas`` for waves 1-3, or -1.
    neighbour
        ``(n_municipalities, 3)`` True where a municipality is not in the wave but is one of
        the nearest neighbours of a member (exposed to spillovers).
    """

    municipalities: pd.DataFrame
    areas: pd.DataFrame
    membership: np.ndarray
    neighbour: np.ndarray

    @property
    def n_municipalities(self) -> int:
        """Number of municipalities."""
        return len(self.municipalities)

    def treated(self, wave_number: int) -> np.ndarray:
        """Boolean mask of municipalities in the given wave."""
        return self.membership[:, wave_number - 1] >= 0

    def area_ids(self, wave_number: int) -> np.ndarray:
        """Trial-area id of every municipality in the given wave (empty string if none)."""
        member = self.membership[:, wave_number - 1]
        return np.where(member >= 0, self.areas["area"].to_numpy()[np.maximum(member, 0)], "")

    @cached_property
    def first_treated(self) -> np.ndarray:
        """First trial month ``t`` of each municipality (0 if it never ran a trial)."""
        starts = np.array([month_index(w.start) for w in WAVES])
        member = self.membership >= 0
        first = np.where(member, starts[None, :], np.iinfo(np.int64).max).min(axis=1)
        return np.where(member.any(axis=1), first, 0)


def build_design(n_municipalities: int, rng: np.random.Generator) -> Design:
    """Draw a synthetic country with ``n_municipalities`` municipalities and its trials.

    Parameters
    ----------
    n_municipalities
        At least 100; 309 reproduces Finland. Trial sizes scale proportionally.
    rng
        Source of randomness (the design seed's generator).

    Returns
    -------
    Design
    """
    check_municipality_count(n_municipalities)
    muni = _municipalities(n_municipalities, rng)
    tree = cKDTree(muni[["x", "y"]].to_numpy())
    _, nearest = tree.query(muni[["x", "y"]].to_numpy(), k=min(N_NEAREST + 1, len(muni)))
    nearest = nearest[:, 1:]
    scale = n_municipalities / 309
    membership = np.full((n_municipalities, 3), -1, dtype=np.int64)
    areas: list[dict] = []
    _assign_wave1(muni, nearest, scale, rng, membership, areas)
    _assign_wave2(muni, nearest, scale, membership, areas)
    _assign_wave3(muni, nearest, scale, rng, membership, areas)
    area_table = pd.DataFrame(areas)
    area_table["area_z"] = rng.standard_normal(len(area_table))
    neighbour = np.zeros_like(membership, dtype=bool)
    for w in range(3):
        members = membership[:, w] >= 0
        close = np.zeros(n_municipalities, dtype=bool)
        close[nearest[members, :N_NEIGHBOURS].ravel()] = True
        neighbour[:, w] = close & ~members
    return Design(muni, area_table, membership, neighbour)


def check_municipality_count(n_municipalities: int) -> None:
    """Raise SimulationError unless 100 <= ``n_municipalities`` <= 5000."""
    if isinstance(n_municipalities, bool) or not isinstance(n_municipalities, int | np.integer) \
            or not 100 <= n_municipalities <= 5000:
        raise SimulationError(
            f"n_municipalities={n_municipalities!r} is outside [100, 5000]; the trial design "
            "needs at least 100 municipalities (309 reproduces Finland)."
        )


def _municipalities(n: int, rng: np.random.Generator) -> pd.DataFrame:
    counts = _region_counts(n)
    rows = []
    named_by_ely: dict[str, list[tuple]] = {}
    for city in NAMED_CITIES:
        named_by_ely.setdefault(city[2], []).append(city)
    for (ely, _, ely_level, cx, cy), count in zip(ELY_REGIONS, counts, strict=True):
        named = named_by_ely.get(ely, [])
        for j in range(count):
            if j < len(named):
                code, name, _, lf, level = named[j]
                x, y = cx + 8.0 * j, cy + 5.0 * j
                growth = 0.006
            else:
                code, name = "", f"{ely} municipality {j - len(named) + 1}"
                lf = float(np.clip(2500 * np.exp(rng.standard_normal()), 150, 20_000))
                level = float(np.exp(0.22 * rng.standard_normal()))
                x, y = cx + 45 * rng.standard_normal(), cy + 45 * rng.standard_normal()
                growth = -0.004 + 0.006 * rng.standard_normal()
            rows.append((code, name, ely, x, y, lf, ely_level * level, growth))
    muni = pd.DataFrame(
        rows, columns=["municipality", "name", "ely", "x", "y", "labour_force",
                       "unemployment_level", "growth"]
    )
    synthetic = muni["municipality"] == ""
    muni.loc[synthetic, "municipality"] = [f"SYN{i:03d}" for i in range(1, synthetic.sum() + 1)]
    muni["labour_force"] = muni["labour_force"].round().astype(np.int64)
    # Structural levels average to one over the labour force, so national rates match.
    muni["unemployment_level"] /= np.average(muni["unemployment_level"],
                                             weights=muni["labour_force"])
    muni["population"] = (muni["labour_force"] * POPULATION_PER_WORKER).round().astype(np.int64)
    level = muni["unemployment_level"].to_numpy()
    log_lf = np.log(muni["labour_force"].to_numpy() / 10_000)
    size = len(muni)
    muni["ltu_share"] = np.clip(0.22 + 0.12 * (level - 1) + 0.03 * rng.standard_normal(size),
                                0.08, 0.45)
    muni["foreign_share"] = np.clip(0.06 + 0.03 * log_lf + 0.01 * rng.standard_normal(size),
                                    0.01, 0.25)
    muni["services_ratio"] = 0.20 * np.exp(0.2 * rng.standard_normal(size))
    muni["other_ratio"] = 0.45 * np.exp(0.15 * rng.standard_normal(size))
    muni["vacancy_ratio"] = 0.010 * np.exp(0.1 * log_lf + 0.3 * rng.standard_normal(size))
    return muni


def _region_counts(n: int) -> np.ndarray:
    """Split ``n`` municipalities over the ELY regions in the real proportions."""
    base = np.array([r[1] for r in ELY_REGIONS], dtype=float)
    exact = base / base.sum() * n
    counts = np.floor(exact).astype(int)
    remainder = n - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:remainder]] += 1
    named = np.array([sum(c[2] == r[0] for c in NAMED_CITIES) for r in ELY_REGIONS])
    return np.maximum(counts, named + 2)  # n >= 100 keeps the sum at n in practice


def _index_of(muni: pd.DataFrame, name: str) -> int | None:
    hits = np.flatnonzero(muni["name"].to_numpy() == name)
    return int(hits[0]) if hits.size else None


def _add_area(areas: list[dict], membership: np.ndarray, muni: pd.DataFrame, wave: int,
              name: str, members: list[int]) -> None:
    number = sum(a["wave"] == wave for a in areas) + 1
    membership[members, wave - 1] = len(areas)
    areas.append({
        "wave": wave,
        "area": f"W{wave}-{number:02d}",
        "area_name": name,
        "anchor": muni["municipality"].iat[members[0]],
        "n_municipalities": len(members),
        "population": int(muni["population"].to_numpy()[members].sum()),
    })


def _grow(anchor: int, extra: int, nearest: np.ndarray, free: np.ndarray) -> list[int]:
    """Return the anchor plus up to ``extra`` of its nearest still-free municipalities."""
    members = [anchor]
    free[anchor] = False
    for j in nearest[anchor]:
        if len(members) > extra:
            break
        if free[j]:
            members.append(int(j))
            free[j] = False
    return members


def _assign_wave1(muni, nearest, scale, rng, membership, areas) -> None:
    """Wave 1: high-unemployment areas, selected on structural (long-term) unemployment."""
    n_areas = max(2, round(WAVE1_AREAS * scale))
    n_members = max(n_areas, round(WAVE1_MUNICIPALITIES * scale))
    level = np.log(muni["unemployment_level"].to_numpy())
    ltu = muni["ltu_share"].to_numpy()
    score = 2.5 * (level - level.mean()) / level.std() + 1.0 * (ltu - ltu.mean()) / ltu.std()
    anchors = [i for i in (_index_of(muni, c) for c in WAVE1_FORCED) if i is not None]
    available = np.ones(len(muni), dtype=bool)
    for a in anchors:
        available[a] = False
        available[nearest[a, :3]] = False
    while len(anchors) < n_areas and available.any():
        weights = np.where(available, np.exp(score), 0.0)
        pick = int(rng.choice(len(muni), p=weights / weights.sum()))
        anchors.append(pick)
        available[pick] = False
        available[nearest[pick, :3]] = False
    extras = rng.multinomial(n_members - len(anchors), np.full(len(anchors), 1 / len(anchors)))
    free = np.ones(len(muni), dtype=bool)
    free[anchors] = False
    for a, extra in zip(anchors, extras, strict=True):
        free[a] = True
        members = _grow(a, int(extra), nearest, free)
        _add_area(areas, membership, muni, 1, f"{muni['name'].iat[a]} area", members)


def _assign_wave2(muni, nearest, scale, membership, areas) -> None:
    """Wave 2: the eight regional trials, anchored on their real centres."""
    free = np.ones(len(muni), dtype=bool)
    for trial_name, anchor_name, extra in WAVE2_TRIALS:
        anchor = _index_of(muni, anchor_name)
        if anchor is None:  # the synthetic Keski-Pohjanmaa centre
            candidates = np.flatnonzero((muni["ely"] == "Pohjanmaa").to_numpy() & free
                                        & (muni["name"] != "Vaasa").to_numpy())
            anchor = int(candidates[np.argmax(muni["labour_force"].to_numpy()[candidates])])
        members = _grow(anchor, max(0, round(extra * scale)), nearest, free)
        _add_area(areas, membership, muni, 2, trial_name, members)


def _assign_wave3(muni, nearest, scale, rng, membership, areas) -> None:
    """Wave 3: areas of at least 30,000 inhabitants; nearly every big city takes part.

    Every city of 100,000+ inhabitants runs its own area, about half of the other towns of
    30,000+ apply, and the remaining areas are groups of small municipalities that together
    pass the threshold. Once every area passes it, the remaining member municipalities are
    small ones joining a nearby area (preferably a small area, so that big cities do not
    swallow their suburbs).
    """
    n_areas = max(2, round(WAVE3_AREAS * scale))
    n_members = max(n_areas, round(WAVE3_MUNICIPALITIES * scale))
    pop = muni["population"].to_numpy()
    order = np.argsort(-pop, kind="stable")
    anchors = [int(i) for i in order if pop[i] >= 100_000][:n_areas]
    for i in order:
        if len(anchors) >= n_areas or pop[i] < WAVE3_MIN_POPULATION:
            break
        near_anchor = any(i in nearest[a, :2] for a in anchors)
        if i not in anchors and not near_anchor and rng.random() < WAVE3_TOWN_APPLIES:
            anchors.append(int(i))
    blocked = np.zeros(len(muni), dtype=bool)
    for a in anchors:
        blocked[a] = True
        blocked[nearest[a, :N_NEIGHBOURS]] = True
    while len(anchors) < n_areas:  # rural areas: small municipalities grouped together
        pool = np.flatnonzero(~blocked)
        pick = int(pool[rng.integers(pool.size)]) if pool.size else \
            int(next(i for i in order if i not in anchors))
        anchors.append(pick)
        blocked[pick] = True
        blocked[nearest[pick, :N_NEIGHBOURS]] = True
    free = np.ones(len(muni), dtype=bool)
    free[anchors] = False
    members = {a: [a] for a in anchors}
    helsinki = _index_of(muni, "Helsinki")
    growable = [a for a in anchors if a != helsinki]
    total = len(anchors)
    for a in growable:  # first bring every area up to the population threshold
        for j in nearest[a]:
            if pop[members[a]].sum() >= WAVE3_MIN_POPULATION or total >= n_members:
                break
            if free[j]:
                members[a].append(int(j))
                free[j] = False
                total += 1
    while total < n_members and growable:
        size = np.array([pop[members[a]].sum() for a in growable], dtype=float)
        weights = 1 / np.sqrt(size)
        a = growable[int(rng.choice(len(growable), p=weights / weights.sum()))]
        candidates = [j for j in nearest[a] if free[j] and pop[j] < WAVE3_SMALL_MEMBER]
        if not candidates:
            growable.remove(a)
            continue
        members[a].append(int(candidates[0]))
        free[candidates[0]] = False
        total += 1
    for a in anchors:
        _add_area(areas, membership, muni, 3, f"{muni['name'].iat[a]} area", members[a])
