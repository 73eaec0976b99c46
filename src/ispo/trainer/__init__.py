"""ISPO as a drop-in for TRL's GRPO: ``ISPOConfig`` and ``ISPOTrainer``."""

from ispo.trainer.config import ISPOConfig
from ispo.trainer.trainer import ISPOTrainer

__all__ = ["ISPOConfig", "ISPOTrainer"]
