"""rlserve's Celery worker: runs TrainSpecs with rlcore and writes their metrics to the database."""
