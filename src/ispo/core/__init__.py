"""The ISPO maths as pure tensor functions (spec: ../shared/spec/ISPO.md).

Stages, each a function: per-token statistics (``entropy_from_logits``, ``normalized_entropy``,
``token_drift``) -> per-rollout signals (``conditional_ifd``, ``critical_token_mask`` +
``token_directional_reward``) -> ``composite_reward`` -> ``group_advantages``. No trainer or config
objects come in; tensors and scalars in, tensors out.
"""

from ispo.core.advantages import REWARD_SCALES, RewardScale, group_advantages, nanstd
from ispo.core.critical import CRITICAL_MODES, CriticalMode, critical_token_mask, top_fraction_mask
from ispo.core.diagnostics import group_is_constant
from ispo.core.ifd import auto_kappa, conditional_ifd, ema_update, ifd_saturation
from ispo.core.reward import INTRINSIC_GROUPS, IntrinsicGroups, composite_reward, intrinsic_group_mask
from ispo.core.scaling import (
    INTRINSIC_SCALES,
    IntrinsicScale,
    intrinsic_advantages,
    min_outcome_advantage_gap,
    outcome_std_floor,
)
from ispo.core.token_reward import critical_token_advantages, token_directional_reward
from ispo.core.token_stats import entropy_from_logits, masked_mean, normalized_entropy, token_drift

__all__ = [
    "CRITICAL_MODES",
    "INTRINSIC_GROUPS",
    "INTRINSIC_SCALES",
    "REWARD_SCALES",
    "CriticalMode",
    "IntrinsicGroups",
    "IntrinsicScale",
    "RewardScale",
    "auto_kappa",
    "composite_reward",
    "conditional_ifd",
    "critical_token_advantages",
    "critical_token_mask",
    "ema_update",
    "entropy_from_logits",
    "group_advantages",
    "group_is_constant",
    "ifd_saturation",
    "intrinsic_advantages",
    "intrinsic_group_mask",
    "masked_mean",
    "min_outcome_advantage_gap",
    "nanstd",
    "normalized_entropy",
    "outcome_std_floor",
    "token_directional_reward",
    "token_drift",
    "top_fraction_mask",
]
