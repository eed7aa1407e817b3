"""Independent response ("Fully independent response in disordered solids", Zu, Desai,
Goodrich 2024): Jacobians of features w.r.t. parameters, SVD and rank, finite-difference
checks, linear-regime sweeps, one-step design (workflow/rules/response.smk)."""
