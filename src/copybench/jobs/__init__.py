"""Jobs: the long runs that chain measurement, results and the report (the nightly, the
gate's power study, the GPU check)."""
