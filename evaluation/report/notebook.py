"""What every report notebook calls: set-up, showing tables with their warnings, saved tables.

A chapter notebook is a thin sequence of calls::

    study = notebook.setup(DATA_DIR, OUT_DIR, WAVE, OUTCOMES, SEED, THRESHOLD)
    table = chapters.overall_effects(study)
    notebook.show_table(study, table, "overall_effects", chapter=3, individual=False)
    ...
    notebook.finish(study)

:func:`setup` configures the display and routes every warning of the kernel into the
study's :class:`~evaluation.report.warning_log.WarningLog`; :func:`show_table` saves a table,
displays it and shows the warnings issued while it was computed right below it;
:func:`show_warnings` does the same for a figure.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import pandas as pd

from evaluation.estimators.results import minimum_detectable_effect
from evaluation.report.study import Study
from evaluation.report.warning_log import warning_lines

#: File in ``OUT_DIR`` listing the data files a notebook read, in order (one per line), so
#: that a failing notebook's error can name the file it was working on.
DATA_READS_FILE = ".data-reads.txt"


def track_data_reads(data_dir: str, out_dir: str) -> None:
    """Record every file under ``data_dir`` that pandas reads in ``out_dir/DATA_READS_FILE``.

    Wraps :func:`pandas.read_parquet` and :func:`pandas.read_csv` in this kernel (once);
    the report builder names the last file in its error when a cell fails.
    """
    import functools
    from pathlib import Path

    root, log = Path(data_dir).resolve(), Path(out_dir) / DATA_READS_FILE
    for name in ("read_parquet", "read_csv"):
        reader = getattr(pd, name)
        if getattr(reader, "_tracks_data_reads", False):
            continue

        @functools.wraps(reader)
        def tracked(path: Any, *args: Any, __reader: Any = reader, **kwargs: Any) -> Any:
            try:
                target = Path(path).resolve()
                if root in target.parents and log.parent.is_dir():
                    with log.open("a", encoding="utf-8") as handle:
                        handle.write(f"{target}\n")
            except (TypeError, OSError):  # buffers and unwritable logs are not tracked
                pass
            return __reader(path, *args, **kwargs)

        tracked._tracks_data_reads = True  # type: ignore[attr-defined]
        setattr(pd, name, tracked)


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def md(text: str) -> None:
    """Display Markdown text."""
    from IPython.display import Markdown

    _display(Markdown(text))


def setup(data_dir: str, out_dir: str, wave: int, outcomes: Sequence[str], seed: int,
          threshold: int, *, float_format: str = "{:,.4f}") -> Study:
    """Configure the notebook (figures, table display, warning capture) and return the study.

    Parameters
    ----------
    data_dir, out_dir, wave, outcomes, seed, threshold
        The notebook's parameters (see :class:`~evaluation.report.study.Study`).
    float_format
        Format of floats in displayed tables.
    """
    import matplotlib.pyplot as plt

    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        shell = None
    if shell is not None:
        shell.run_line_magic("config", "InlineBackend.figure_formats = ['png']")
    plt.rcParams.update({"figure.dpi": 110, "font.size": 9})
    pd.set_option("display.float_format", float_format.format)
    pd.set_option("display.max_rows", 200)
    track_data_reads(data_dir, out_dir)
    study = Study(data_dir, wave=wave, outcomes=outcomes, threshold=threshold, seed=seed,
                  out_dir=out_dir)
    study.warnings.install()
    return study


def show_figures() -> None:
    """Display every open figure below the cell and close it.

    This is what pyplot's ``show`` does with the inline backend; the notebooks call this
    instead, so that no code of the package shows figures through pyplot.
    """
    import matplotlib.pyplot as plt

    for number in plt.get_fignums():
        _display(plt.figure(number))
    plt.close("all")


def warnings_html(lines: Sequence[str]) -> str:
    """Return the warning box shown below a table or figure (empty when no warnings)."""
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return ('<div class="report-warnings" style="border-left:3px solid #c60;padding:2px 8px;'
            'margin:4px 0 12px 0;font-size:0.9em"><b>Warnings while computing the numbers '
            f'above</b><ul>{items}</ul></div>')


def _show_lines(lines: Sequence[str]) -> None:
    if lines:
        from IPython.display import HTML

        _display(HTML(warnings_html(lines)))


def show_warnings(study: Study, context: str) -> list[str]:
    """Show the warnings issued since the last table below a figure named ``context``."""
    lines = warning_lines(study.warnings.flush(context))
    _show_lines(lines)
    return lines


def show_table(study: Study, table: pd.DataFrame, name: str, *, chapter: int,
               individual: bool, spec: list[str] | None = None, kind: str = "estimates",
               index: str | list[str] | None = None, hide: Sequence[str] = ("command",)
               ) -> None:
    """Save ``table`` (:meth:`Study.save_table`), display it and the warnings behind it.

    Parameters
    ----------
    study, table, name, chapter, individual, spec, kind
        As :meth:`~evaluation.report.study.Study.save_table` (``spec`` defaults to the
        table's non-empty ``command`` column).
    index
        Column(s) shown as the index.
    hide
        Columns saved but not displayed; ``true_att`` is hidden too when it holds no
        number (real data).
    """
    if spec is None and "command" in table:
        spec = [c for c in table["command"] if isinstance(c, str) and c]
    before = len(study.warnings.flushed)
    study.save_table(table, name, chapter=chapter, individual=individual, spec=spec, kind=kind)
    records = study.warnings.flushed[before:]
    shown = table.drop(columns=[c for c in hide if c in table])
    if "true_att" in shown and pd.to_numeric(shown["true_att"], errors="coerce").isna().all():
        shown = shown.drop(columns="true_att")
    _display(shown.set_index(index) if index is not None else shown)
    _show_lines(warning_lines(records))


def finish(study: Study, context: str = "end of chapter") -> None:
    """Show the warnings issued after the chapter's last table (the end of a notebook)."""
    show_warnings(study, context)


def effect_sentence(row: pd.Series, unit: str = "") -> str:
    """Describe an effect: ``+0.0123 (95 % CI ... to ...; not statistically significant ...)``.

    A null result states its minimum detectable effect (5 % test, 80 % power), so a reader
    sees which effects the data could have found.
    """
    if row["p_value"] < 0.05:
        verdict = "statistically significant at the 5 % level"
    else:
        mde = float(row["mde"] if "mde" in row
                    else minimum_detectable_effect(row["std_error"], df=row.get("df")))
        verdict = (f"not statistically significant; effects smaller than ±{mde:.4f}{unit} "
                   "could not be detected with 80 % power")
    return (f"{row['estimate']:+.4f}{unit} (95 % CI {row['ci_lower']:+.4f} to "
            f"{row['ci_upper']:+.4f}; {verdict})")
