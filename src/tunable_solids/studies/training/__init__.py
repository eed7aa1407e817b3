"""Design by training ("Designing athermal disordered solids with automatic
differentiation", Zu, Goodrich 2024): training runs with checkpoints, validation, gradient
check, bond analysis and the untrained ensemble (workflow/rules/training.smk)."""
