"""``ISPOConfig``: TRL's ``GRPOConfig`` plus the method choice and the ISPO knobs (docs/algorithm.md).

Every field's help text is written once, here; ``ispo train`` turns the fields into YAML keys and
``--field value`` flags. Values marked [ours] are this project's choices where the paper is silent.
Fields of a method other than ISPO carry the method's prefix (``rlpr_...``); ``ISPOConfig`` refuses
them under another method (docs/methods.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Literal

from trl import GRPOConfig

from ispo.answers.formats import ANSWER_FORMATS, AnswerFormat
from ispo.core import CRITICAL_MODES, INTRINSIC_GROUPS, INTRINSIC_SCALES

IFD_ANSWERS: tuple[str, ...] = ("sampled", "reference")
TOKEN_CREDITS: tuple[str, ...] = ("sequence", "critical")

# critical mode -> whether it needs the drift filter (hence a reference model)
CRITICAL_NEEDS_DRIFT: dict[str, bool] = {"intersection": True, "entropy": False, "drift": True, "union": True}


@dataclass
class ISPOConfig(GRPOConfig):
    """Configuration of ``ISPOTrainer``: every ``GRPOConfig`` field plus the ISPO composite reward.

    With ``lambda_ifd = lambda_tok = 0`` the trainer is GRPO (it still logs the ISPO diagnostics).
    """

    method: str = field(
        default="ispo",
        metadata={
            "help": "Training method: 'ispo' or a registered baseline ('grpo', 'dr_grpo', 'entropy_tokens', "
            "'self_certainty', 'rlpr', 'zvp', 'prog', 'pacr'; docs/methods.md). A method's TRL settings "
            "(Dr.GRPO's loss_type and scale_rewards) fill the fields left at their defaults."
        },
    )
    outcome_reward: str | None = field(
        default=None,
        metadata={
            "help": "The reward function (name or index) whose 0/1 value is the outcome R_o. Default: the only "
            "function, else 'math_accuracy'. Other functions are auxiliary: added with their weights to the reward."
        },
    )

    lambda_ifd: float = field(
        default=0.2,
        metadata={
            "help": "Weight of the bounded Conditional IFD term in the composite reward (docs/algorithm.md §3). "
            "[ours] 0.2."
        },
    )
    lambda_tok: float = field(
        default=0.2,
        metadata={"help": "Weight of the token-level directional reward T_i (docs/algorithm.md §3). [ours] 0.2."},
    )
    kappa: float | str = field(
        default=2.0,
        metadata={
            "help": "IFD bound: S~ = tanh(S / kappa) (docs/algorithm.md §1). A number > 0, or 'auto' (the batch "
            "median of |S| over answered rollouts, docs/algorithm.md §3b). [ours] 2.0."
        },
    )
    rho_h: float = field(
        default=0.2,
        metadata={
            "help": "Entropy filter: share of the batch's valid tokens with the highest entropy "
            "(docs/algorithm.md §2). [ours] 0.2."
        },
    )
    rho_d: float = field(
        default=0.5,
        metadata={
            "help": "Drift filter: share of the batch's valid tokens with the largest |log pi_old - log pi_ref| "
            "(docs/algorithm.md §2). [ours] 0.5."
        },
    )
    delta_min: float = field(
        default=1e-3,
        metadata={
            "help": "Drift filter: minimum drift for a token to count as drifted (docs/algorithm.md §2). [ours] 1e-3."
        },
    )
    tau: float = field(
        default=0.3,
        metadata={
            "help": "Hinge threshold on normalised entropy for incorrect rollouts, in [0, 1] "
            "(docs/algorithm.md §2). [ours] 0.3."
        },
    )
    eta: float = field(
        default=1.0,
        metadata={
            "help": "Hinge slope for confident tokens of incorrect rollouts, >= 0 (docs/algorithm.md §2). [ours] 1.0."
        },
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
    answer_format: AnswerFormat = field(
        default="boxed",
        metadata={
            "help": "Where the final answer is: 'boxed' (\\boxed{...}) or 'answer_tag' (<answer>...</answer>).",
            "choices": list(ANSWER_FORMATS),
        },
    )
    token_credit: Literal["sequence", "critical"] = field(
        default="sequence",
        metadata={
            "help": "How the token reward enters: 'sequence' (one T_i per rollout in the composite reward) or "
            "'critical' (per-token advantages on critical tokens, docs/algorithm.md §3b). [ours]",
            "choices": list(TOKEN_CREDITS),
        },
    )
    intrinsic_scale: Literal["group", "none", "outcome_floor", "decoupled"] = field(
        default="group",
        metadata={
            "help": "How the composite reward is normalised in groups: 'group' (TRL's scale_rewards, the paper's), "
            "'none', 'outcome_floor' or 'decoupled' (docs/algorithm.md §3b). [ours] option.",
            "choices": list(INTRINSIC_SCALES),
        },
    )
    intrinsic_groups: Literal["all", "mixed", "uniform"] = field(
        default="all",
        metadata={
            "help": "Which groups receive the intrinsic terms: 'all', 'mixed' (outcomes differ) or 'uniform' "
            "(all outcomes equal) (docs/algorithm.md §3b). [ours] option.",
            "choices": list(INTRINSIC_GROUPS),
        },
    )
    token_asymmetry: bool = field(
        default=True,
        metadata={
            "help": "Token reward branches by outcome (the paper's). False: every rollout uses the correct-rollout "
            "formula (the paper's 'no asymmetry' ablation, docs/algorithm.md §3b)."
        },
    )
    # ----- baselines (docs/methods.md); each field belongs to the method its prefix names -----
    self_certainty_mode: Literal["replace", "add"] = field(
        default="replace",
        metadata={
            "help": "self_certainty: 'replace' (no verifier, Intuitor) or 'add' (outcome + weight x self-certainty).",
            "choices": ["replace", "add"],
        },
    )
    self_certainty_weight: float = field(
        default=1.0, metadata={"help": "self_certainty: weight of the term in 'add' mode."}
    )
    self_certainty_combine: Literal["advantages", "rewards"] = field(
        default="advantages",
        metadata={
            "help": "self_certainty 'add': sum the standardised advantages (official) or standardise the summed "
            "rewards [ours].",
            "choices": ["advantages", "rewards"],
        },
    )
    rlpr_aggregate: Literal["mean_prob", "geometric_mean_prob", "mean_log_prob", "sum_log_prob", "sequence_prob"] = (
        field(
            default="mean_prob",
            metadata={
                "help": "rlpr: how the gold answer's token probabilities are aggregated (RLPR: mean of probabilities).",
                "choices": ["mean_prob", "geometric_mean_prob", "mean_log_prob", "sum_log_prob", "sequence_prob"],
            },
        )
    )
    rlpr_debias: bool = field(
        default=True, metadata={"help": "rlpr: subtract the score of the gold answer without the reasoning."}
    )
    rlpr_std_filter: bool = field(
        default=False,
        metadata={
            "help": "rlpr: RLPR's adaptive filter; prompts whose reward std is below beta x EMA(mean std) get "
            "advantage 0 [ours: no refill]."
        },
    )
    rlpr_filter_beta: float = field(default=0.5, metadata={"help": "rlpr: std filter threshold factor (RLPR: 0.5)."})
    rlpr_filter_ema: float = field(default=0.99, metadata={"help": "rlpr: std filter EMA ratio (RLPR: 0.99)."})
    zvp_alpha: float = field(
        default=0.1, metadata={"help": "zvp: scale of the entropy advantages in zero-variance groups."}
    )
    prog_alpha: float = field(
        default=0.1, metadata={"help": "prog: weight of (prompt confidence - answer confidence) [ours]."}
    )
    prog_low_prob_fraction: float = field(
        default=0.2, metadata={"help": "prog: share of least-likely completion tokens the answer confidence averages."}
    )
    prog_prompt_fraction: float = field(
        default=1.0,
        metadata={"help": "prog: share of least-likely prompt tokens the prompt confidence averages [ours]."},
    )
    prog_apply_to: Literal["all", "correct"] = field(
        default="all",
        metadata={"help": "prog: which rollouts get the correction [ours].", "choices": ["all", "correct"]},
    )
    pacr_variant: Literal["dense", "sparse"] = field(
        default="dense",
        metadata={
            "help": "pacr: 'dense' (per-token process advantages) or 'sparse' (a bonus on the reward) [ours].",
            "choices": ["dense", "sparse"],
        },
    )
    pacr_gamma: float = field(default=1.0, metadata={"help": "pacr: discount of the step returns."})
    pacr_lambda_process: float = field(default=0.2, metadata={"help": "pacr: weight of the process advantage [ours]."})
    pacr_sparse_weight: float = field(
        default=0.1, metadata={"help": "pacr sparse: weight of the confidence rise [ours]."}
    )
    pacr_max_steps: int = field(
        default=8,
        metadata={
            "help": "pacr: at most this many reasoning steps per rollout (K+1 forwards each); adjacent steps "
            "merge beyond it [ours]."
        },
    )
    allow_outcome_override: bool = field(
        default=False,
        metadata={
            "help": "Allow weights with 2*lambda_ifd + lambda_tok >= 1, where intrinsic terms can rank an incorrect "
            "rollout above a correct one (docs/algorithm.md §3, outcome dominance). [ours]"
        },
    )
    ispo_diagnostics: bool = field(
        default=True,
        metadata={
            "help": "Compute the ISPO signals for the docs/algorithm.md §4 diagnostics even when both weights "
            "are 0 (GRPO runs). "
            "Costs the same extra passes as ISPO; False skips them and logs only outcome-based diagnostics."
        },
    )

    def __post_init__(self):
        _apply_method_settings(self)
        super().__post_init__()
        _check_fields(self)

    @property
    def ispo_enabled(self) -> bool:
        """True when the method is ISPO and its composite reward differs from the outcome reward."""
        return self.method == "ispo" and (self.lambda_ifd != 0 or self.lambda_tok != 0)

    @property
    def needs_drift(self) -> bool:
        return CRITICAL_NEEDS_DRIFT[self.critical]


def _apply_method_settings(config: ISPOConfig) -> None:
    """Fill the GRPOConfig fields the method implies where they are at their defaults; refuse a conflict."""
    from ispo.methods import get_method

    method = get_method(config.method)
    defaults = {f.name: f.default for f in fields(ISPOConfig)}
    for name, value in method.trl_settings.items():
        current = getattr(config, name)
        if current == defaults[name]:
            setattr(config, name, value)
        elif current != value:
            raise ValueError(f"ISPOConfig.{name}: method {config.method!r} means {name}={value!r}, got {current!r}")


def _check_method_fields(config: ISPOConfig) -> None:
    """A field of another method (by its prefix) set away from its default is a mistake, named in one line."""
    from ispo.methods import METHODS, get_method

    own = get_method(config.method).prefix
    for f in fields(ISPOConfig):
        for method in METHODS.values():
            if method.prefix and method.prefix != own and f.name.startswith(method.prefix):
                if getattr(config, f.name) != f.default:
                    raise ValueError(
                        f"ISPOConfig.{f.name} belongs to method {method.name!r} but method is {config.method!r}"
                    )


def _check_fields(config: ISPOConfig) -> None:
    """Raise ``ValueError`` naming the first invalid ISPO field."""

    def require(name: str, ok: bool, what: str) -> None:
        if not ok:
            raise ValueError(f"ISPOConfig.{name} {what}, got {getattr(config, name)!r}")

    from ispo.methods import get_method

    _check_method_fields(config)
    if isinstance(config.kappa, str) and config.kappa != "auto":
        try:
            config.kappa = float(config.kappa)
        except ValueError:
            raise ValueError(f"ISPOConfig.kappa must be a number > 0 or 'auto', got {config.kappa!r}") from None
    if config.outcome_reward is not None:
        config.outcome_reward = str(config.outcome_reward)
    numbers = ("lambda_ifd", "lambda_tok", "rho_h", "rho_d", "delta_min", "tau", "eta")
    for name in numbers + (() if config.kappa == "auto" else ("kappa",)):
        value = getattr(config, name)
        require(name, isinstance(value, (int, float)) and not isinstance(value, bool), "must be a number")
        require(name, math.isfinite(value), "must be finite")
    require("lambda_ifd", config.lambda_ifd >= 0, "must be >= 0")
    require("lambda_tok", config.lambda_tok >= 0, "must be >= 0")
    require("kappa", config.kappa == "auto" or config.kappa > 0, "must be > 0 or 'auto'")
    require("rho_h", 0 < config.rho_h <= 1, "must be in (0, 1]")
    require("rho_d", 0 < config.rho_d <= 1, "must be in (0, 1]")
    require("delta_min", config.delta_min >= 0, "must be >= 0")
    require("tau", 0 <= config.tau <= 1, "must be in [0, 1]")
    require("eta", config.eta >= 0, "must be >= 0")
    require("critical", config.critical in CRITICAL_MODES, f"must be one of {CRITICAL_MODES}")
    require("ifd_answer", config.ifd_answer in IFD_ANSWERS, f"must be one of {IFD_ANSWERS}")
    require("answer_format", config.answer_format in ANSWER_FORMATS, f"must be one of {ANSWER_FORMATS}")
    require("token_credit", config.token_credit in TOKEN_CREDITS, f"must be one of {TOKEN_CREDITS}")
    require("intrinsic_scale", config.intrinsic_scale in INTRINSIC_SCALES, f"must be one of {INTRINSIC_SCALES}")
    require("intrinsic_groups", config.intrinsic_groups in INTRINSIC_GROUPS, f"must be one of {INTRINSIC_GROUPS}")
    require("token_asymmetry", isinstance(config.token_asymmetry, bool), "must be true or false")
    require("self_certainty_weight", config.self_certainty_weight >= 0, "must be >= 0")
    require("rlpr_filter_beta", config.rlpr_filter_beta >= 0, "must be >= 0")
    require("rlpr_filter_ema", 0 <= config.rlpr_filter_ema <= 1, "must be in [0, 1]")
    require("zvp_alpha", config.zvp_alpha >= 0, "must be >= 0")
    require("prog_alpha", config.prog_alpha >= 0, "must be >= 0")
    require("prog_low_prob_fraction", 0 < config.prog_low_prob_fraction <= 1, "must be in (0, 1]")
    require("prog_prompt_fraction", 0 < config.prog_prompt_fraction <= 1, "must be in (0, 1]")
    require("pacr_gamma", 0 <= config.pacr_gamma <= 1, "must be in [0, 1]")
    require("pacr_lambda_process", config.pacr_lambda_process >= 0, "must be >= 0")
    require("pacr_sparse_weight", config.pacr_sparse_weight >= 0, "must be >= 0")
    require(
        "pacr_max_steps",
        isinstance(config.pacr_max_steps, int) and config.pacr_max_steps >= 1,
        "must be an integer >= 1",
    )
    if not config.allow_outcome_override and 2 * config.lambda_ifd + config.lambda_tok >= 1:
        raise ValueError(
            f"ISPOConfig.lambda_ifd / lambda_tok: 2*lambda_ifd + lambda_tok = "
            f"{2 * config.lambda_ifd + config.lambda_tok:g} >= 1 lets intrinsic terms rank an incorrect rollout "
            "above a correct one (docs/algorithm.md §3); lower them or set allow_outcome_override=True"
        )
    replaces_advantages = config.ispo_enabled if config.method == "ispo" else get_method(config.method).uses_outcome
    if replaces_advantages and config.multi_objective_aggregation != "sum_then_normalize":
        raise ValueError(
            f"ISPOConfig.multi_objective_aggregation must be 'sum_then_normalize' under method {config.method!r} "
            f"(its reward adds to R_o and the weighted auxiliary rewards), got {config.multi_objective_aggregation!r}"
        )
