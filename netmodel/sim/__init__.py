"""The SimPy engine: stations, seeded random streams, and the request processes."""
