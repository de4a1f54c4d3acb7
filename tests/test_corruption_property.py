"""Property: a corrupted panel CSV gives the clean estimate, a package error, or a warning.

Random corruptions of a small valid panel CSV (a cell emptied, a field removed or added, a
number replaced by text, rows duplicated, the last line cut short) are read with
:func:`evaluation.sources.files.load_estimation_data` and estimated with the
Callaway-Sant'Anna simple ATT (:func:`evaluation.estimators.registry.estimate_table`). Each
must end in one of three ways: the estimate of the clean file (to 1e-9), an error of the
package (:class:`~evaluation.errors.EvaluationError`), or a different number together with a
warning of the package saying what changed. A different number without a message, or an
exception from pandas or NumPy, fails. The file is never modified. A cell replaced by
another valid number is not among the corruptions: no reader can tell it from data.
"""

from __future__ import annotations

import io
import tempfile
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.errors import EvaluationError, EvaluationWarning
from evaluation.estimators.registry import estimate_table
from evaluation.simulate import simulate_staggered
from evaluation.sources.files import load_estimation_data

COLUMNS = ["unit", "time", "cohort", "y"]


@cache
def clean_text() -> str:
    """A 16-unit, 5-period staggered panel (cohorts 3 and 4, never-treated 0) as CSV."""
    data = simulate_staggered(n_units=16, n_periods=5, cohorts=(3, 4), n_clusters=4,
                              seed=11).data
    return data[["unit", "time", "cohort", "y", "x"]].to_csv(index=False)


def simple_att(frame: pd.DataFrame) -> float:
    table = estimate_table(frame, unit="unit", time="time", cohort="cohort", outcome="y",
                           never_treated=0, aggregate="simple")
    return float(table["estimate"].iloc[0])


@cache
def clean_att() -> float:
    return simple_att(pd.read_csv(io.StringIO(clean_text())))


def corrupt(text: str, kind: str, row: int, column: int, token: str) -> str:
    """Apply one corruption to data line ``row`` (1-based after the header)."""
    lines = text.split("\n")  # the last element is "" (the final line ending)
    data_lines = len(lines) - 2
    index = 1 + row % data_lines
    if kind == "duplicate row":
        lines.insert(index, lines[index])
        return "\n".join(lines)
    if kind == "truncate":
        last = lines[-2]
        lines[-2] = last[:column % (len(last) + 1)]  # possibly only the line ending
        return "\n".join(lines[:-1])  # the cut line has no line ending
    fields = lines[index].split(",")
    column %= len(fields)
    if kind == "empty cell":
        fields[column] = ""
    elif kind == "drop field":
        del fields[column]
    elif kind == "extra field":
        fields.insert(column, token)
    elif kind == "text in cell":
        fields[column] = token
    lines[index] = ",".join(fields)
    return "\n".join(lines)


KINDS = ["empty cell", "drop field", "extra field", "text in cell", "duplicate row",
         "truncate"]


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(KINDS), row=st.integers(0, 10_000), column=st.integers(0, 100),
       token=st.sampled_from(["abc", "n/a", "1,5", "--", "x1", "TRUE", "2021-03"]))
def test_corruption_gives_the_clean_number_an_error_or_a_warning(kind, row, column, token):
    text = corrupt(clean_text(), kind, row, column, token)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "panel.csv"
        path.write_text(text, encoding="utf-8")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                att = simple_att(load_estimation_data(path, COLUMNS))
            except EvaluationError as error:
                att, message = None, str(error)
        assert path.read_text(encoding="utf-8") == text
    if att is None:
        assert message and "\n" not in message.strip()
        return
    ours = [w for w in caught if issubclass(w.category, EvaluationWarning)]
    if not np.isclose(att, clean_att(), rtol=1e-9, atol=1e-12):
        assert ours, f"{kind}: estimate {att} instead of {clean_att()} without a warning"
        assert all(str(w.message).strip() for w in ours)


def test_the_corruptions_do_what_they_say():
    text = clean_text()
    header, first = text.split("\n")[:2]
    assert header == "unit,time,cohort,y,x"
    assert corrupt(text, "extra field", 0, 1, "abc").split("\n")[1] == (
        first.split(",")[0] + ",abc," + ",".join(first.split(",")[1:]))
    assert corrupt(text, "drop field", 0, 4, "").split("\n")[1] == first.rsplit(",", 1)[0]
    assert corrupt(text, "duplicate row", 0, 0, "").split("\n")[1:3] == [first, first]
    truncated = corrupt(text, "truncate", 0, 3, "")
    assert not truncated.endswith("\n") and len(truncated.split("\n")) == 16 * 5 + 1
    assert np.isfinite(clean_att())


def test_known_outcomes_of_each_corruption(tmp_path):
    """Which way each kind of corruption goes on a fixed example (exact messages)."""
    text = clean_text()
    outcomes = {}
    for kind in KINDS:
        path = tmp_path / f"{kind.replace(' ', '_')}.csv"
        path.write_text(corrupt(text, kind, 4, 3, "abc"), encoding="utf-8")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                outcomes[kind] = ("estimate", simple_att(load_estimation_data(path, COLUMNS)),
                                  [type(w.message).__name__ for w in caught
                                   if issubclass(w.category, EvaluationWarning)])
            except EvaluationError as error:
                outcomes[kind] = ("error", type(error).__name__, str(error))
    assert outcomes["extra field"][:2] == ("error", "DataFileError")
    assert "line 6 (6 fields)" in outcomes["extra field"][2]
    assert outcomes["drop field"][:2] == ("error", "DataFileError")
    assert "line 6 (4 fields)" in outcomes["drop field"][2]
    assert outcomes["duplicate row"][0] == "error"
    assert "more than once" in outcomes["duplicate row"][2]
    assert outcomes["text in cell"][:2] == ("error", "NonNumericColumnError")
    assert outcomes["empty cell"][0] in ("error", "estimate")
    if outcomes["empty cell"][0] == "estimate":
        assert outcomes["empty cell"][2]  # a missing outcome is dropped with a warning
    assert outcomes["truncate"][:2] == ("error", "DataFileError")  # cut to 'u,t,' (2 fields)
    last = text.split("\n")[-2]
    path = tmp_path / "no_line_ending.csv"
    path.write_text(corrupt(text, "truncate", 0, len(last), ""), encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        att = simple_att(load_estimation_data(path, COLUMNS))
    assert att == clean_att()
    assert [w.category.__name__ for w in caught if "no line ending" in str(w.message)] == [
        "DataFileWarning"]
