"""rlserve's HTTP service: FastAPI routes, database models, settings and auth."""
