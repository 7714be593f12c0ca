"""The report: ``build`` reads results and run folders into one report model, ``render`` writes it as HTML and
Markdown, ``run_folder`` reads a recipe run folder (training curves, settings, pair statistics)."""
