"""Results: per-point summary rows, the tidy tables on disk, and plots."""
