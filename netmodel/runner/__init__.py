"""Running points: one point, and resumable sweeps over many on local processes."""
