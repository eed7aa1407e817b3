"""Packings: initial configurations, minimization, mechanics of every scenario, the states
table and the overview figure (workflow/rules/packings.smk)."""
