"""Text -> numbers: sentence embeddings and prompt-complexity statistics.

Importing this module does not import torch or sentence-transformers; the embedding model
loads on first use.
"""

from ._complexity import FEATURE_NAMES as COMPLEXITY_FEATURES
from ._complexity import PromptComplexity
from ._embedding import SentenceEmbedder, clear_embedding_cache, default_model_path
from ._validation import check_prompts

__all__ = [
    "COMPLEXITY_FEATURES",
    "PromptComplexity",
    "SentenceEmbedder",
    "check_prompts",
    "clear_embedding_cache",
    "default_model_path",
]
