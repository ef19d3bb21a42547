"""Studies: sweeps of jobs over spec fields and seeds (design), their API models (schemas),
their statistics (stats) and the views the routes serve (views)."""
