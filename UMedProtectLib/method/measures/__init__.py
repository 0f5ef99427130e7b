"""The report's figures and warnings: visibility, texture change, the budget's strength."""
