"""The studies built on the physics core, one package each.

A study holds its own physics, the plain stage functions its Snakemake rules call, its
tables (loaders) and its figures. It imports the core (``tunable_solids.*``) and never
another study: what two studies need lives in the core.

- :mod:`.packings`: generate -> minimize -> measure, the states table, the overview figure;
- :mod:`.response`: *Fully independent response in disordered solids* (Jacobians, SVD,
  sweeps, one-step design);
- :mod:`.training`: *Designing athermal disordered solids with automatic differentiation*
  (training runs, validation, analyses).
"""
