"""The report: the tidy table -> tables, findings, plots (pure functions) -> HTML
(:mod:`.build` puts them together)."""
