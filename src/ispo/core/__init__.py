"""The ISPO maths and its baselines as pure tensor functions (docs/algorithm.md, docs/methods.md).

One function per equation of the paper: ``conditional_ifd`` (Eq. 2), ``entropy_filter`` (Eq. 4),
``drift_filter`` (Eq. 5), ``critical_token_mask`` (C = E ∩ D), ``token_directional_reward`` (Eqs. 6-7),
``composite_reward`` (Eq. 8) -> ``group_advantages``. The paper's hyperparameters live in
``ispo.core.paper`` and are the keyword defaults here. No trainer or config objects come in; tensors
and scalars in, tensors out.
"""

from ispo.core import paper
from ispo.core.advantages import REWARD_SCALES, RewardScale, group_advantages, nanstd
from ispo.core.critical import (
    CRITICAL_MODES,
    CriticalMode,
    combine_filters,
    critical_token_mask,
    drift_filter,
    entropy_filter,
)
from ispo.core.diagnostics import dominance_violations, group_is_constant, zero_advantage_groups
from ispo.core.ifd import conditional_ifd
from ispo.core.pacr import (
    PROCESS_NORMALISATIONS,
    SPARSE_SCORES,
    confidence_gains,
    newline_step_boundaries,
    pacr_dense_advantages,
    pacr_process_advantages,
    pacr_sparse_reward,
    pacr_sparse_score,
    pacr_step_confidence,
    pacr_step_returns,
    step_ids_from_boundaries,
)
from ispo.core.prog import PROG_APPLY_TO, low_probability_confidence, prog_advantages
from ispo.core.reward import INTRINSIC_GROUPS, IntrinsicGroups, composite_reward, intrinsic_group_mask
from ispo.core.rlpr import (
    ANSWER_AGGREGATES,
    answer_token_score,
    group_reward_std,
    rlpr_reward,
    rlpr_std_filter,
    update_std_threshold,
)
from ispo.core.scaling import (
    INTRINSIC_SCALES,
    IntrinsicScale,
    intrinsic_advantages,
    min_outcome_advantage_gap,
    outcome_std_floor,
)
from ispo.core.self_certainty import (
    SELF_CERTAINTY_COMBINES,
    SELF_CERTAINTY_MODES,
    self_certainty_advantages,
    self_certainty_from_mean_log_prob,
    sequence_self_certainty,
    token_self_certainty,
)
from ispo.core.token_reward import critical_token_advantages, token_directional_reward
from ispo.core.token_stats import entropy_from_logits, masked_mean, normalized_entropy
from ispo.core.zvp import zero_variance_kind, zvp_advantages

__all__ = [
    "ANSWER_AGGREGATES",
    "CRITICAL_MODES",
    "INTRINSIC_GROUPS",
    "INTRINSIC_SCALES",
    "PROCESS_NORMALISATIONS",
    "PROG_APPLY_TO",
    "REWARD_SCALES",
    "SELF_CERTAINTY_COMBINES",
    "SELF_CERTAINTY_MODES",
    "SPARSE_SCORES",
    "CriticalMode",
    "IntrinsicGroups",
    "IntrinsicScale",
    "RewardScale",
    "answer_token_score",
    "composite_reward",
    "conditional_ifd",
    "confidence_gains",
    "combine_filters",
    "critical_token_advantages",
    "critical_token_mask",
    "dominance_violations",
    "drift_filter",
    "entropy_filter",
    "entropy_from_logits",
    "group_advantages",
    "group_is_constant",
    "group_reward_std",
    "intrinsic_advantages",
    "intrinsic_group_mask",
    "low_probability_confidence",
    "masked_mean",
    "min_outcome_advantage_gap",
    "nanstd",
    "newline_step_boundaries",
    "normalized_entropy",
    "outcome_std_floor",
    "paper",
    "pacr_dense_advantages",
    "pacr_process_advantages",
    "pacr_sparse_reward",
    "pacr_sparse_score",
    "pacr_step_confidence",
    "pacr_step_returns",
    "prog_advantages",
    "rlpr_reward",
    "rlpr_std_filter",
    "self_certainty_advantages",
    "self_certainty_from_mean_log_prob",
    "sequence_self_certainty",
    "step_ids_from_boundaries",
    "token_directional_reward",
    "token_self_certainty",
    "update_std_threshold",
    "zero_advantage_groups",
    "zero_variance_kind",
    "zvp_advantages",
]
