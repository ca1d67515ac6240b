"""Population learners shared between workers: deltas out, deltas in (see README)."""
