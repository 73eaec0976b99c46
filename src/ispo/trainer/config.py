"""``ISPOConfig``: TRL's ``GRPOConfig`` plus the method choice and the ISPO knobs (docs/algorithm.md).

Every field's help text is written once, here; ``ispo train`` turns the fields into YAML keys and
``--field value`` flags. Values marked [ours] are this project's choices where the paper is silent.
Fields of a method other than ISPO carry the method's prefix (``rlpr_...``); ``ISPOConfig`` refuses
them under another method (docs/methods.md).
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, fields
from typing import Literal

from trl import GRPOConfig

from ispo.answers.formats import AnswerFormat
from ispo.core import CriticalMode, IntrinsicGroups, IntrinsicScale, paper
from ispo.methods.builtin import CRITICAL_NEEDS_DRIFT  # ISPO's table: which critical modes need the base model

IfdAnswer = Literal["sampled", "reference"]
TokenCredit = Literal["sequence", "critical"]

# Fields of the earlier reading of the paper (docs/algorithm.md, "What changed"): a recipe, flag or study
# file that still sets one gets this line instead of an unknown-field error.
REMOVED_FIELDS: dict[str, str] = {
    "kappa": "removed: the paper's IFD enters the reward raw, without tanh(S / kappa) (docs/algorithm.md, Eq. 8)",
    "rho_h": "replaced by entropy_top_frac: the share of each rollout's tokens, not of the batch (docs/algorithm.md, "
    "Eq. 4)",
    "rho_d": "removed: the drift filter is a fixed signed threshold, drift_threshold (docs/algorithm.md, Eq. 5)",
    "delta_min": "replaced by drift_threshold: log pi_old - log pi_base >= drift_threshold nats (docs/algorithm.md, "
    "Eq. 5)",
    "tau": "replaced by hinge_tau, in nats of raw entropy (docs/algorithm.md, Eq. 7)",
    "eta": "replaced by hinge_beta, the hinge's slope (docs/algorithm.md, Eq. 7)",
}


def removed_field_error(name: str) -> str | None:
    """The one-line message for a field of the earlier reading (``REMOVED_FIELDS``), or None."""
    if name not in REMOVED_FIELDS:
        return None
    return f"ISPOConfig.{name} was {REMOVED_FIELDS[name]}"


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
        default=paper.LAMBDA_IFD,
        metadata={
            "help": "lambda_1: weight of the raw Conditional IFD term, signed by the outcome "
            "(docs/algorithm.md, Eq. 8). Paper: 0.5."
        },
    )
    lambda_tok: float = field(
        default=paper.LAMBDA_TOK,
        metadata={
            "help": "lambda_2: weight of the token-level directional reward (docs/algorithm.md, Eq. 8). Paper: 0.1."
        },
    )
    entropy_top_frac: float = field(
        default=paper.ENTROPY_TOP_FRAC,
        metadata={
            "help": "Entropy filter: share k of each rollout's completion tokens with the highest entropy, in (0, 1] "
            "(docs/algorithm.md, Eq. 4). Paper: 0.1."
        },
    )
    drift_threshold: float = field(
        default=paper.DRIFT_THRESHOLD,
        metadata={
            "help": "Drift filter: tokens with log pi_old - log pi_base >= this many nats, signed "
            "(docs/algorithm.md, Eq. 5). Paper: 0.3."
        },
    )
    hinge_tau: float = field(
        default=paper.HINGE_TAU,
        metadata={
            "help": "tau_H: raw entropy (nats) below which a critical token of an incorrect rollout is penalised "
            "(docs/algorithm.md, Eq. 7). Paper: 0.3."
        },
    )
    entropy_alpha: float = field(
        default=paper.ENTROPY_ALPHA,
        metadata={
            "help": "alpha: weight of the entropy reward at critical tokens of incorrect rollouts, >= 0 "
            "(docs/algorithm.md, Eq. 7). Paper: 1.0."
        },
    )
    hinge_beta: float = field(
        default=paper.HINGE_BETA,
        metadata={
            "help": "beta of Eq. 7 (not TRL's KL beta): slope of the confidence hinge, >= 0; 0 is the paper's "
            "'beta = 0' ablation (docs/algorithm.md, Eq. 7). Paper: 1.0."
        },
    )
    critical: CriticalMode = field(
        default="intersection",
        metadata={
            "help": "Critical tokens: 'intersection' (entropy AND drift, the paper's), 'entropy', 'drift' or 'union'. "
            "Drift needs a reference model: TRL's when beta > 0, else ISPOTrainer loads one.",
        },
    )
    ifd_answer: IfdAnswer = field(
        default="sampled",
        metadata={
            "help": "IFD answer tokens: 'sampled' (the rollout's own answer, outcome-conditioned sign) or 'reference' "
            "(the gold answer's tokens, no sign; one counterfactual per prompt). [ours] option.",
        },
    )
    answer_format: AnswerFormat = field(
        default="boxed",
        metadata={
            "help": "Where the final answer is: 'boxed' (\\boxed{...}) or 'answer_tag' (<answer>...</answer>).",
        },
    )
    token_credit: TokenCredit = field(
        default="sequence",
        metadata={
            "help": "How the token reward enters: 'sequence' (one T_i per rollout in the composite reward) or "
            "'critical' (per-token advantages on critical tokens, docs/algorithm.md §7). [ours]",
        },
    )
    intrinsic_scale: IntrinsicScale = field(
        default="group",
        metadata={
            "help": "How the composite reward is normalised in groups: 'group' (TRL's scale_rewards, the paper's), "
            "'none', 'outcome_floor' or 'decoupled' (docs/algorithm.md §7). [ours] option.",
        },
    )
    intrinsic_groups: IntrinsicGroups = field(
        default="all",
        metadata={
            "help": "Which groups receive the intrinsic terms: 'all', 'mixed' (outcomes differ) or 'uniform' "
            "(all outcomes equal) (docs/algorithm.md §7). [ours] option.",
        },
    )
    token_asymmetry: bool = field(
        default=True,
        metadata={
            "help": "Token reward branches by outcome (the paper's). False: every rollout uses the correct-rollout "
            "formula (the paper's 'Symmetric' ablation, whose formula is [ours]; docs/algorithm.md §2)."
        },
    )
    # ----- baselines (docs/methods.md); each field belongs to the method its prefix names -----
    self_certainty_mode: Literal["replace", "add"] = field(
        default="replace",
        metadata={
            "help": "self_certainty: 'replace' (no verifier, Intuitor) or 'add' (outcome + weight x self-certainty).",
        },
    )
    self_certainty_weight: float = field(
        default=1.0, metadata={"help": "self_certainty: weight of the term in 'add' mode."}
    )
    self_certainty_combine: Literal["advantages", "rewards"] = field(
        default="advantages",
        metadata={
            "help": "self_certainty 'add': sum the standardised advantages (Intuitor) or standardise the summed "
            "rewards [ours].",
        },
    )
    rlpr_aggregate: Literal["mean_prob", "geometric_mean_prob", "mean_log_prob", "sum_log_prob", "sequence_prob"] = (
        field(
            default="mean_prob",
            metadata={
                "help": "rlpr: how the gold answer's token probabilities are aggregated (RLPR: mean of probabilities).",
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
        metadata={"help": "prog: which rollouts get the correction [ours]."},
    )
    pacr_variant: Literal["dense", "sparse"] = field(
        default="dense",
        metadata={
            "help": "pacr: 'dense' (per-token process advantages) or 'sparse' (a bonus on the reward) [ours].",
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
            "help": "Allow an outcome reward (outcome_reward) whose reward weight is not 1; R_o is read as a 0/1 "
            "outcome, so a scaled one changes the composite's balance. [ours]"
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
        _coerce_text_values(self)
        _check_choices(self)
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


def _coerce_text_values(config: ISPOConfig) -> None:
    """Text where the field's annotation wants a number, a boolean or a choice: converted by the one rule of
    ``ispo.cli_args.parse_value`` (YAML reads ``1e-4`` as text; so do flags and study files)."""
    from ispo.cli_args import parse_value

    hints = _hints()
    for f in fields(config):
        value = getattr(config, f.name)
        annotation = hints.get(f.name)
        if not isinstance(value, str) or annotation is None or _accepts_text(annotation):
            continue
        setattr(config, f.name, parse_value(value, annotation, flag=f"ISPOConfig.{f.name}"))


def _check_choices(config: ISPOConfig) -> None:
    """Every ``Literal`` field, of every method, checked in one place against its annotation's choices."""
    hints = _hints()
    for f in fields(config):
        choices = _literal_choices(hints.get(f.name))
        if choices is not None and getattr(config, f.name) not in choices:
            raise ValueError(
                f"ISPOConfig.{f.name} must be one of {', '.join(map(str, choices))}, got {getattr(config, f.name)!r}"
            )


_HINTS: dict[str, object] | None = None


def _hints() -> dict[str, object]:
    global _HINTS
    if _HINTS is None:
        _HINTS = typing.get_type_hints(ISPOConfig)
    return _HINTS


def _literal_choices(annotation) -> tuple | None:
    """The choices of ``Literal[...]`` (or ``Literal[...] | None``, None included), else None."""
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    members = typing.get_args(annotation)
    literals = [m for m in members if typing.get_origin(m) is Literal]
    if len(literals) == 1 and len(members) == 2 and type(None) in members:
        return (*typing.get_args(literals[0]), None)
    return None


def _accepts_text(annotation) -> bool:
    """Whether a plain string is a valid value of ``annotation`` as written (str, Any, a union with str)."""
    if annotation in (str, typing.Any, object):
        return True
    return str in typing.get_args(annotation)


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
    """Raise ``ValueError`` naming the first invalid ISPO field (choices are checked by ``_check_choices``)."""

    def require(name: str, ok: bool, what: str) -> None:
        if not ok:
            raise ValueError(f"ISPOConfig.{name} {what}, got {getattr(config, name)!r}")

    from ispo.methods import get_method

    _check_method_fields(config)
    if config.outcome_reward is not None:
        config.outcome_reward = str(config.outcome_reward)
    numbers = (
        "lambda_ifd",
        "lambda_tok",
        "entropy_top_frac",
        "drift_threshold",
        "hinge_tau",
        "entropy_alpha",
        "hinge_beta",
    )
    for name in numbers:
        value = getattr(config, name)
        require(name, isinstance(value, (int, float)) and not isinstance(value, bool), "must be a number")
        require(name, math.isfinite(value), "must be finite")
    require("lambda_ifd", config.lambda_ifd >= 0, "must be >= 0")
    require("lambda_tok", config.lambda_tok >= 0, "must be >= 0")
    require("entropy_top_frac", 0 < config.entropy_top_frac <= 1, "must be in (0, 1]")
    require("hinge_tau", config.hinge_tau >= 0, "must be >= 0")
    require("entropy_alpha", config.entropy_alpha >= 0, "must be >= 0")
    require("hinge_beta", config.hinge_beta >= 0, "must be >= 0")
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
    replaces_advantages = config.ispo_enabled if config.method == "ispo" else get_method(config.method).uses_outcome
    if replaces_advantages and config.multi_objective_aggregation != "sum_then_normalize":
        raise ValueError(
            f"ISPOConfig.multi_objective_aggregation must be 'sum_then_normalize' under method {config.method!r} "
            f"(its reward adds to R_o and the weighted auxiliary rewards), got {config.multi_objective_aggregation!r}"
        )
