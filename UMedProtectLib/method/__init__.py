"""The method: budgets into windows, the designs' perturbations fitted min-min against a surrogate and applied, the
visibility and strength figures of every report (`protection.py`: protect() and fit_profile())."""
