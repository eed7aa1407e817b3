"""Metamaterials study: Stillinger-Weber force fields, melt-quenched networks, E ~ Phi^n and its
Bayesian optimization (issue 15)."""
