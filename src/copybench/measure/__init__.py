"""Measurement: the harnesses' plumbing (asv runs, fresh worker processes, progress) and the
studies (paired overhead, the gate, instruction counts, the allocator, the GPU figures,
semantic drift).  Imports the suite and the on-disk formats, nothing above them."""
