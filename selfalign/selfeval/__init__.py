"""Confidence methods, one per file. Each takes an engine and (question, answer) items and returns scores;
none knows which stage calls it."""
