"""A tiny random BERT with a word-level vocabulary, built offline once per session."""

import pytest

#: Every word the tests' prompts use, so that each is one token of the tiny vocabulary.
WORDS = (
    "a an the of on in at with and left right two three tall small big old new "
    "red blue white green black yellow cat dog kite tree trees wall hill dusk sky car house boat "
    "painting photo oil sketch river city night"
).split()


def build_tiny_bert(folder, seed: int = 0) -> str:
    """Write a 2-layer, 32-wide random ``BertModel`` and a word-level tokenizer to ``folder``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ",", "."]
    BertTokenizer(vocab={word: i for i, word in enumerate(vocab)}, do_lower_case=True).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """Folder of a tiny random BERT (hidden size 32, 2 layers) and its tokenizer."""
    return build_tiny_bert(tmp_path_factory.mktemp("encoders") / "tiny-bert")
