"""Outputs that survive a kill -9 and know what made them: bounded file reading and appending (``io``; YAML:
``yamlfile``), the one output guard every writer holds (``guard``) and its one-writer lock (``locks``), content
hashes (``hashes``), settings and input checks on resume (``lineage``), what produced a result (``provenance``) and
the chunk loop with its progress lines (``progress``)."""
