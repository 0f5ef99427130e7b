"""The min-min fit of a perturbation against a surrogate: its steps, its loss, the carrier's augmentation."""
