"""Statistics over the current judgments: model rankings with confidence intervals, position
bias, agreement, and per rater and per reviewer figures (``tandem stats``, ``GET /api/stats``).

Pure functions over plain records (``records``), read from the database by ``queries``:
``fit`` (Bradley–Terry), ``bias``, ``agreement``, ``raters``; ``report`` puts them together.
"""
