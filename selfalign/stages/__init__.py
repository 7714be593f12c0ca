"""The stages, one module per command and named after it (``sk-data`` is ``stages/sk_data.py``); each is declared
once in ``selfalign.registry``. A stage reads its inputs and appends its output rows through ``io``/``lineage``,
and runs models only through ``engines``; stages do not import each other except for shared building blocks
(``sk_data.make_row`` is the row shape ``sk-tune`` trains on)."""
