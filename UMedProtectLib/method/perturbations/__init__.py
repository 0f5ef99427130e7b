"""The perturbations the designs build: UMed's contour and texture parts, the quiet designs' noise removal,
the LBP texture bound."""
