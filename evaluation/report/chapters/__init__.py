"""Computations behind the report chapters: one module of table functions per chapter.

The notebooks only display and plot what these functions return, so every table of the
report can be recomputed (and tested) without running a notebook. Counts computed from
individual-level data leave these functions only through
:func:`evaluation.report.disclosure.disclose`.

``data`` (chapter 1), ``comparison_groups`` (2), ``effects`` (3), ``heterogeneity`` and
``waves`` (4, the municipal analysis of all three waves),
``sensitivity`` (3, parallel-trends violations), ``services_costs`` (5), ``robustness`` (6),
``validation`` (7) and ``conclusions`` (8);
``common`` holds what they share. The functions are also importable from this package directly.
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
    municipal_paths,
    person_covariates,
    pre_period_fit,
)
from evaluation.report.chapters.conclusions import CONCLUSION_COLUMNS, headline_conclusions
from evaluation.report.chapters.data import (
    has_costs,
    monthly_shares,
    municipal_cost_share,
    state_distribution,
    subsidy_costs,
    target_group_counts,
)
from evaluation.report.chapters.effects import (
    EVENT_ESTIMATORS,
    OVERALL_ESTIMATORS,
    event_study,
    overall_effects,
    overall_specs,
    pretrend_tests,
    what_moved,
)
from evaluation.report.chapters.heterogeneity import (
    SUBGROUPS,
    area_effects,
    person_groups,
    subgroup_effects,
)
from evaluation.report.chapters.robustness import (
    BASELINE,
    distinct_designs,
    matched_effect,
    matched_panel,
    placebo_effect,
    robustness_specs,
    robustness_table,
)
from evaluation.report.chapters.sensitivity import (
    SENSITIVITY_COLUMNS,
    sensitivity_analysis,
    sensitivity_summary,
)
from evaluation.report.chapters.services_costs import (
    COST_QUANTITIES,
    CostShift,
    cost_shift,
    service_effects,
)
from evaluation.report.chapters.validation import (
    SCENARIO_NOTES,
    stress_table,
    validation_config,
    validation_rows,
    validation_table,
)
from evaluation.report.chapters.waves import (
    WAVE_COLUMNS,
    NaiveTWFE,
    all_wave_effects,
    change_between,
    naive_twfe,
    wave_window,
)

__all__ = [
    "BASELINE",
    "CONCLUSION_COLUMNS",
    "COST_QUANTITIES",
    "EFFECT_COLUMNS",
    "EVENT_ESTIMATORS",
    "MUNICIPAL_COVARIATES",
    "OVERALL_ESTIMATORS",
    "PERSON_COVARIATES",
    "SCENARIO_NOTES",
    "SENSITIVITY_COLUMNS",
    "SUBGROUPS",
    "WAVE_COLUMNS",
    "CostShift",
    "NaiveTWFE",
    "all_wave_effects",
    "area_effects",
    "balance_without_means",
    "change_between",
    "cost_shift",
    "disclosed_sample_sizes",
    "distinct_designs",
    "event_study",
    "has_costs",
    "headline_conclusions",
    "match_municipalities",
    "match_people",
    "matched_effect",
    "matched_panel",
    "monthly_shares",
    "municipal_cost_share",
    "municipal_covariates",
    "municipal_paths",
    "naive_twfe",
    "overall_effects",
    "overall_specs",
    "person_covariates",
    "person_groups",
    "placebo_effect",
    "pre_period_fit",
    "pretrend_tests",
    "robustness_specs",
    "robustness_table",
    "sensitivity_analysis",
    "sensitivity_summary",
    "service_effects",
    "state_distribution",
    "stress_table",
    "subgroup_effects",
    "subsidy_costs",
    "target_group_counts",
    "validation_config",
    "validation_rows",
    "validation_table",
    "wave_window",
    "what_moved",
]
