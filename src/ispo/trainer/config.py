"""``ISPOConfig``: TRL's ``GRPOConfig`` plus the ISPO knobs (spec: ../shared/spec/ISPO.md).

Every field's help text is written once, here; ``ispo train`` turns the fields into YAML keys and
``--field value`` flags. Values marked [ours] are this project's choices where the paper is silent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from trl import GRPOConfig

from ispo.core import CRITICAL_MODES

IFD_ANSWERS: tuple[str, ...] = ("sampled", "reference")
ANSWER_FORMATS: tuple[str, ...] = ("boxed", "answer_tag")
TOKEN_CREDITS: tuple[str, ...] = ("sequence",)

# critical mode -> whether it needs the drift filter (hence a reference model)
CRITICAL_NEEDS_DRIFT: dict[str, bool] = {"intersection": True, "entropy": False, "drift": True, "union": True}


@dataclass
class ISPOConfig(GRPOConfig):
    """Configuration of ``ISPOTrainer``: every ``GRPOConfig`` field plus the ISPO composite reward.

    With ``lambda_ifd = lambda_tok = 0`` the trainer is GRPO (it still logs the ISPO diagnostics).
    """

    lambda_ifd: float = field(
        default=0.2,
        metadata={"help": "Weight of the bounded Conditional IFD term in the composite reward (spec s3). [ours] 0.2."},
    )
    lambda_tok: float = field(
        default=0.2,
        metadata={"help": "Weight of the token-level directional reward T_i (spec s3). [ours] 0.2."},
    )
    kappa: float = field(
        default=2.0,
        metadata={"help": "IFD bound: S~ = tanh(S / kappa) (spec s1). Must be > 0. [ours] 2.0."},
    )
    rho_h: float = field(
        default=0.2,
        metadata={"help": "Entropy filter: share of the batch's valid tokens with the highest entropy (spec s2). [ours] 0.2."},
    )
    rho_d: float = field(
        default=0.5,
        metadata={"help": "Drift filter: share of the batch's valid tokens with the largest |log pi_old - log pi_ref| (spec s2). [ours] 0.5."},
    )
    delta_min: float = field(
        default=1e-3,
        metadata={"help": "Drift filter: minimum drift for a token to count as drifted (spec s2). [ours] 1e-3."},
    )
    tau: float = field(
        default=0.3,
        metadata={"help": "Hinge threshold on normalised entropy for incorrect rollouts, in [0, 1] (spec s2). [ours] 0.3."},
    )
    eta: float = field(
        default=1.0,
        metadata={"help": "Hinge slope for confident tokens of incorrect rollouts, >= 0 (spec s2). [ours] 1.0."},
    )
    critical: Literal["intersection", "entropy", "drift", "union"] = field(
        default="intersection",
        metadata={
            "help": "Critical tokens: 'intersection' (entropy AND drift, the paper's), 'entropy', 'drift' or 'union'. "
            "Drift needs a reference model: TRL's when beta > 0, else ISPOTrainer loads one.",
            "choices": list(CRITICAL_MODES),
        },
    )
    ifd_answer: Literal["sampled", "reference"] = field(
        default="sampled",
        metadata={
            "help": "IFD answer tokens: 'sampled' (the rollout's own answer, outcome-conditioned sign) or 'reference' "
            "(the gold answer's tokens, no sign; one counterfactual per prompt). [ours] option.",
            "choices": list(IFD_ANSWERS),
        },
    )
    answer_format: Literal["boxed", "answer_tag"] = field(
        default="boxed",
        metadata={
            "help": "Where the final answer is: 'boxed' (\\boxed{...}) or 'answer_tag' (<answer>...</answer>).",
            "choices": list(ANSWER_FORMATS),
        },
    )
    token_credit: Literal["sequence"] = field(
        default="sequence",
        metadata={
            "help": "How the token reward enters: 'sequence' (one T_i per rollout in the composite reward). [ours]",
            "choices": list(TOKEN_CREDITS),
        },
    )
    allow_outcome_override: bool = field(
        default=False,
        metadata={
            "help": "Allow weights with 2*lambda_ifd + lambda_tok >= 1, where intrinsic terms can rank an incorrect "
            "rollout above a correct one (spec s3, outcome dominance). [ours]"
        },
    )
    ispo_diagnostics: bool = field(
        default=True,
        metadata={
            "help": "Compute the ISPO signals for the spec s4 diagnostics even when both weights are 0 (GRPO runs). "
            "Costs the same extra passes as ISPO; False skips them and logs only outcome-based diagnostics."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        _check_fields(self)

    @property
    def ispo_enabled(self) -> bool:
        """True when the composite reward differs from the outcome reward."""
        return self.lambda_ifd != 0 or self.lambda_tok != 0

    @property
    def needs_drift(self) -> bool:
        return CRITICAL_NEEDS_DRIFT[self.critical]


def _check_fields(config: ISPOConfig) -> None:
    """Raise ``ValueError`` naming the first invalid ISPO field."""

    def require(name: str, ok: bool, what: str) -> None:
        if not ok:
            raise ValueError(f"ISPOConfig.{name} {what}, got {getattr(config, name)!r}")

    for name in ("lambda_ifd", "lambda_tok", "kappa", "rho_h", "rho_d", "delta_min", "tau", "eta"):
        value = getattr(config, name)
        require(name, isinstance(value, (int, float)) and not isinstance(value, bool), "must be a number")
        require(name, math.isfinite(value), "must be finite")
    require("lambda_ifd", config.lambda_ifd >= 0, "must be >= 0")
    require("lambda_tok", config.lambda_tok >= 0, "must be >= 0")
    require("kappa", config.kappa > 0, "must be > 0")
    require("rho_h", 0 < config.rho_h <= 1, "must be in (0, 1]")
    require("rho_d", 0 < config.rho_d <= 1, "must be in (0, 1]")
    require("delta_min", config.delta_min >= 0, "must be >= 0")
    require("tau", 0 <= config.tau <= 1, "must be in [0, 1]")
    require("eta", config.eta >= 0, "must be >= 0")
    require("critical", config.critical in CRITICAL_MODES, f"must be one of {CRITICAL_MODES}")
    require("ifd_answer", config.ifd_answer in IFD_ANSWERS, f"must be one of {IFD_ANSWERS}")
    require("answer_format", config.answer_format in ANSWER_FORMATS, f"must be one of {ANSWER_FORMATS}")
    require("token_credit", config.token_credit in TOKEN_CREDITS, f"must be one of {TOKEN_CREDITS}")
    if not config.allow_outcome_override and 2 * config.lambda_ifd + config.lambda_tok >= 1:
        raise ValueError(
            f"ISPOConfig.lambda_ifd / lambda_tok: 2*lambda_ifd + lambda_tok = "
            f"{2 * config.lambda_ifd + config.lambda_tok:g} >= 1 lets intrinsic terms rank an incorrect rollout "
            "above a correct one (spec s3); lower them or set allow_outcome_override=True"
        )
    if config.ispo_enabled and config.multi_objective_aggregation != "sum_then_normalize":
        raise ValueError(
            "ISPOConfig.multi_objective_aggregation must be 'sum_then_normalize' when an ISPO weight is non-zero "
            f"(the composite reward adds to the summed outcome), got {config.multi_objective_aggregation!r}"
        )
