"""The bond-space operator study ("Bond-space operator disentangles quasi-localized and
phononic modes in structural glasses"): the operator A = S M^+ S^T, its dense and matrix-free
spectra, pseudo-harmonic modes."""
