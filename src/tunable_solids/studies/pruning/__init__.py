"""Network pruning ("A cyclical route linking fundamental mechanism and AI algorithm",
Zhu et al. 2024): periodic spring networks whose Poisson's ratio is tuned by removing bonds,
by simulated annealing (:mod:`.annealing`), greedy pruning (:mod:`.greedy`) and gradient
design of bond stiffnesses (:mod:`.gradient`), on exact rank-one updates of the elastic
tensor (:mod:`.elasticity`) of the networks of :mod:`.networks`."""
