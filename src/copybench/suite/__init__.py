"""The suite: what is measured.  The registry of copy methods, every grid and axis, case
preparation, the semantics probes, timers, statistics and units.  Imports nothing of
copybench's outside this folder."""
