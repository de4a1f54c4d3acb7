"""The TEAS-style evaluation report.

* ``study`` — the evaluation design every chapter shares (data, samples, estimate specs);
* ``chapters/`` — one module of table functions per chapter (the numbers of the report);
* ``indicators`` — monitoring indicators of the data chapter;
* ``disclosure`` — statistical disclosure control of counts from individual-level data;
* ``plotting`` — figures shared by chapters (forest plots);
* ``build`` — executes the notebooks in ``notebooks/`` (package data) and renders the HTML.

A new chapter is one notebook in ``notebooks/`` plus one module in ``chapters/``.
"""

