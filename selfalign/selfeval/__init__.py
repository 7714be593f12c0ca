"""The Self-Eval judge's side: confidence methods, one per file and one row each in ``registry.CONFIDENCE``
(``ptrue``, ``likelihood``, ``claimscore`` for claims and consistency, ``oracle`` for gold-match;
the model-free controls ``prior`` and ``random_judge``), each taking an
engine and rows and returning scores, none knowing which stage calls it; the Self-Eval prompt as one object
(``prompt.SelfEvalPrompt``); claim decomposition (``claims``, ``splitter``); and the model-free shortcut scores
every judge is reported beside (``baselines``)."""
