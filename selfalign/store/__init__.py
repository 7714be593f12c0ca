"""Outputs that survive a kill -9 and know what made them: file reading and appending (``io``), the one-writer
lock (``locks``), content hashes (``hashes``), settings and input checks on resume (``lineage``), what produced a
result (``provenance``) and the chunk loop with its progress lines (``progress``)."""
