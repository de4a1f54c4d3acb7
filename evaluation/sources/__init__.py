"""Data sources: facts about the trials, real-data readers and file helpers.

* ``trials`` — dates and target groups of the three waves, month indexing;
* ``files`` — reading ``.csv`` / ``.parquet`` data files, file hashes;
* ``statfin`` — the StatFin 12r5 municipal monthly export;
* ``trial_assignment`` — trial areas joined onto the municipal panel (the real-data path);
* ``csv_export`` — strict readers of semicolon/comma CSV exports shared by the last two.

The simulator (:mod:`evaluation.simulate`, :mod:`evaluation.synthetic`) writes the same
schema, so the report runs unchanged on either.
"""
