"""Results: files on disk -> one tidy table (:mod:`.tidy`), and verdicts between two sets of
results (:mod:`.compare`)."""
