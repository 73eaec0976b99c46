"""The paper's hyperparameters, written once (docs/algorithm.md, Eqs. 4-8).

The keyword defaults of ``ispo.core`` and the fields of ``ISPOConfig`` both read these names; no other
module restates the numbers.
"""

from __future__ import annotations

LAMBDA_IFD = 0.5  # lambda_1: weight of the outcome-signed IFD term in the composite reward (Eq. 8)
LAMBDA_TOK = 0.1  # lambda_2: weight of the token-level directional reward (Eq. 8)
ENTROPY_TOP_FRAC = 0.1  # k: share of each rollout's tokens kept by the entropy filter, k = 10% (Eq. 4)
DRIFT_THRESHOLD = 0.3  # tau_Delta: drift filter threshold on log pi_old - log pi_theta0, in nats (Eq. 5)
HINGE_TAU = 0.3  # tau_H: entropy below which an incorrect rollout's token is penalised, in nats (Eq. 7)
ENTROPY_ALPHA = 1.0  # alpha: weight of the entropy bonus on incorrect rollouts (Eq. 7)
HINGE_BETA = 1.0  # beta: weight of the hallucinated-certainty hinge on incorrect rollouts (Eq. 7)

__all__ = [
    "DRIFT_THRESHOLD",
    "ENTROPY_ALPHA",
    "ENTROPY_TOP_FRAC",
    "HINGE_BETA",
    "HINGE_TAU",
    "LAMBDA_IFD",
    "LAMBDA_TOK",
]
