"""RL-ZVP: entropy-guided token advantages for zero-variance prompts (docs/methods.md, 3).

Source: Le, Jeon, Vu, Lai, Yang, "No Prompt Left Behind: Exploiting Zero-Variance Prompts in LLM
Reinforcement Learning via Entropy-Guided Advantage Shaping", arXiv:2509.21880 (section 3.2, eq. 5);
the equation is taken from the paper's text.
"""

from __future__ import annotations

import math

import torch

from ispo.core._checks import as_bool_mask, check_finite, check_groups, check_same_shape, check_tensor
from ispo.core.advantages import REWARD_SCALES, RewardScale, group_advantages


def zero_variance_kind(
    rewards: torch.Tensor,
    num_generations: int,
    *,
    atol: float = 1e-6,
    positive_threshold: float = 0.0,
) -> torch.Tensor:
    """+1 for rows of positive zero-variance groups, -1 for negative ones, 0 otherwise.

    A group is zero-variance when its finite rewards are all equal (within ``atol``); it is positive
    when that common reward R satisfies R > ``positive_threshold`` (the paper: R_i > 0, so all-correct
    with 0/1 rewards) and negative otherwise (R_i <= 0, all-incorrect). Rows whose reward is NaN
    (unscorable) are 0, as is every row of a group with no finite reward [ours].

    Shapes: rewards ``(B,)`` with B = P * num_generations -> ``(B,)`` int8.
    """
    check_tensor("rewards", rewards, 1)
    check_groups("rewards", rewards.numel(), num_generations)
    if bool(torch.isinf(rewards).any()):
        raise ValueError("rewards has an infinite value")
    if not atol >= 0:
        raise ValueError(f"atol must be >= 0, got {atol}")
    grouped = rewards.view(-1, num_generations)
    present = ~torch.isnan(grouped)
    high = torch.where(present, grouped, torch.full_like(grouped, -math.inf)).amax(dim=1)
    low = torch.where(present, grouped, torch.full_like(grouped, math.inf)).amin(dim=1)
    zero_variance = present.any(dim=1) & (high - low <= atol)
    common = torch.nanmean(grouped, dim=1)
    sign = torch.where(common > positive_threshold, 1, -1).to(torch.int8)
    kind = torch.where(zero_variance, sign, torch.zeros_like(sign))
    return torch.where(present, kind[:, None], torch.zeros_like(kind[:, None])).reshape(-1)


def zvp_advantages(
    rewards: torch.Tensor,
    token_entropy: torch.Tensor,
    completion_mask: torch.Tensor,
    num_generations: int,
    *,
    alpha: float = 0.1,
    scale: RewardScale = "group",
    eps: float = 1e-4,
    atol: float = 1e-6,
    positive_threshold: float = 0.0,
) -> torch.Tensor:
    """Token-level RL-ZVP advantages: GRPO on mixed groups, entropy-shaped on zero-variance groups.

        mixed group (std > 0):  A_{i,t} = GRPO advantage A_i, the same at every token
        positive ZVP group:     A_{i,t} =  alpha * H_{i,t}
        negative ZVP group:     A_{i,t} = -alpha * ( max_{k <= |o_i|} H_{i,k} - H_{i,t} )

    H_{i,t} is the entropy of the policy's next-token distribution at completion position t (full
    vocabulary, nats, under the temperature the loss uses), detached: it scales the update, it is not
    optimised. The max runs over rollout i's own valid tokens. In a positive group high-entropy (forking)
    tokens are reinforced most; in a negative group every token is pushed down except the most uncertain
    one, which is spared. The paper uses alpha = 0.1 (best with 0.2; 0.05 and 0.3 were worse).

    Padded positions get 0. ``scale``/``eps`` are GRPO's options for the mixed groups
    (``group_advantages``); zero-variance detection uses ``atol`` (see ``zero_variance_kind``).

    Shapes: rewards ``(B,)``; token_entropy, completion_mask ``(B, T)`` -> ``(B, T)``.
    """
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    if scale not in REWARD_SCALES:
        raise ValueError(f"scale must be one of {REWARD_SCALES}, got {scale!r}")
    check_tensor("token_entropy", token_entropy, 2)
    check_same_shape("token_entropy", token_entropy, completion_mask=completion_mask)
    check_tensor("rewards", rewards, 1)
    if rewards.shape[0] != token_entropy.shape[0]:
        raise ValueError(f"rewards has {rewards.shape[0]} rows but token_entropy has {token_entropy.shape[0]}")
    mask = as_bool_mask("completion_mask", completion_mask)
    check_finite("token_entropy", token_entropy, mask)
    if bool((token_entropy.masked_fill(~mask, 0.0) < 0).any()):
        raise ValueError("token_entropy must be >= 0 at valid positions")

    kind = zero_variance_kind(rewards, num_generations, atol=atol, positive_threshold=positive_threshold)
    grpo = group_advantages(rewards, num_generations, scale=scale, eps=eps)
    entropy = token_entropy.detach()
    entropy = entropy if entropy.dtype == torch.float64 else entropy.float()
    entropy = entropy.masked_fill(~mask, 0.0)
    # Entropies are >= 0, so 0 at padding never exceeds a valid maximum; an empty row's max is 0.
    row_max = entropy.amax(dim=1, keepdim=True)
    positive = alpha * entropy
    negative = -alpha * (row_max - entropy)
    shaped = torch.where((kind == 1)[:, None], positive, negative)
    advantages = torch.where((kind != 0)[:, None], shaped, grpo.to(entropy.dtype)[:, None].expand_as(entropy))
    return torch.where(mask, advantages, torch.zeros_like(advantages))
