"""The recipe runner: a recipe read and checked (``recipe``), its stages planned, hashed, skipped or resumed
(``pipeline``), and the before/after table of its evaluations (``summary``)."""
