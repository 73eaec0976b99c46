"""pi_old log-probs and entropies of the sampled tokens, recorded while ``transformers`` generates.

The recorder lives in :mod:`ispo.models.recording`, shared with ``ispo.eval``'s HF backend (which
must not import the trainer); this name is kept for the trainer and for existing imports.
"""

from ispo.models.recording import GenerationRecorder

__all__ = ["GenerationRecorder"]
