"""Computations behind the report chapters: one module of table functions per chapter.

The notebooks only display and plot what these functions return, so every table of the
report can be recomputed (and tested) without running a notebook. Counts computed from
individual-level data leave these functions only through
:func:`evaluation.report.disclosure.disclose`.

``data`` (chapter 1), ``comparison_groups`` (2), ``effects`` (3), ``heterogeneity`` (4),
``services_costs`` (5) and ``robustness`` (6); ``common`` holds what they share. The
functions are also importable from this package directly.
"""

from evaluation.report.chapters.common import EFFECT_COLUMNS
from evaluation.report.chapters.comparison_groups import (
    MUNICIPAL_COVARIATES,
    PERSON_COVARIATES,
    balance_without_means,
    disclosed_sample_sizes,
    match_municipalities,
    match_people,
    municipal_covariates,
    person_covariates,
)
from evaluation.report.chapters.data import monthly_shares, state_distribution, target_group_counts
from evaluation.report.chapters.effects import (
    EVENT_ESTIMATORS,
    OVERALL_ESTIMATORS,
    event_study,
    overall_effects,
    overall_specs,
    pretrend_tests,
)
from evaluation.report.chapters.heterogeneity import (
    SUBGROUPS,
    area_effects,
    person_groups,
    subgroup_effects,
    wave_effects,
)
from evaluation.report.chapters.robustness import PERSON_CONTROLS, placebo_effect, robustness_table
from evaluation.report.chapters.services_costs import cost_split, service_effects

__all__ = [
    "EFFECT_COLUMNS", "EVENT_ESTIMATORS", "MUNICIPAL_COVARIATES", "OVERALL_ESTIMATORS",
    "PERSON_CONTROLS", "PERSON_COVARIATES", "SUBGROUPS", "area_effects",
    "balance_without_means", "cost_split", "disclosed_sample_sizes", "event_study",
    "match_municipalities", "match_people", "monthly_shares", "municipal_covariates",
    "overall_effects", "overall_specs", "person_covariates", "person_groups",
    "placebo_effect", "pretrend_tests", "robustness_table", "service_effects",
    "state_distribution", "subgroup_effects", "target_group_counts", "wave_effects",
]
