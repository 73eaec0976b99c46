"""The ISPO maths as pure tensor functions (spec: ../shared/spec/ISPO.md).

Stages, each a function: per-token statistics (``entropy_from_logits``, ``normalized_entropy``,
``token_drift``) -> per-rollout signals (``conditional_ifd``, ``critical_token_mask`` +
``token_directional_reward``) -> ``composite_reward`` -> ``group_advantages``. No trainer or config
objects come in; tensors and scalars in, tensors out.
"""

from ispo.core.advantages import REWARD_SCALES, RewardScale, group_advantages, nanstd
from ispo.core.critical import CRITICAL_MODES, CriticalMode, critical_token_mask, top_fraction_mask
from ispo.core.diagnostics import group_is_constant
from ispo.core.ifd import conditional_ifd
from ispo.core.reward import composite_reward
from ispo.core.token_reward import token_directional_reward
from ispo.core.token_stats import entropy_from_logits, masked_mean, normalized_entropy, token_drift

__all__ = [
    "CRITICAL_MODES",
    "REWARD_SCALES",
    "CriticalMode",
    "RewardScale",
    "composite_reward",
    "conditional_ifd",
    "critical_token_mask",
    "entropy_from_logits",
    "group_advantages",
    "group_is_constant",
    "masked_mean",
    "nanstd",
    "normalized_entropy",
    "token_directional_reward",
    "token_drift",
    "top_fraction_mask",
]
