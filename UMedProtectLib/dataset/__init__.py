"""`umed-protect protect-dataset` and the dataset layouts: one job per study on Dask, a manifest, resume."""
