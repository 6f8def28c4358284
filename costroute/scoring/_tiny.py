"""Tiny scorer models with random weights, built offline from configs (tests, examples, smoke runs)."""

from __future__ import annotations

import os
import string

from ._model import without_progress_bars

__all__ = ["build_tiny_clip", "build_tiny_vlm"]

#: The LLaVA-1.5 conversation format, as a chat template (one user turn, then the answer prompt).
_LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}USER: "
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %} {% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def _clip_vocab() -> dict[str, int]:
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for ch in string.ascii_lowercase + string.digits + ",.'-\"?":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    return vocab


def build_tiny_clip(folder: str | os.PathLike, seed: int = 0, image_size: int = 32) -> str:
    """Save a tiny ``CLIPModel`` with random weights and its processor to ``folder`` (offline, ~1 s).

    The model is a real transformers ``CLIPModel`` built from a small ``CLIPConfig`` (two
    layers of width 32 per tower, 8-pixel patches), the tokenizer a ``CLIPTokenizer`` over an
    in-memory character vocabulary and the image processor a ``CLIPImageProcessor``
    (resize and centre-crop to ``image_size``). The folder loads with
    ``CLIPScorer(folder)``; its scores are those of random weights.

    Parameters
    ----------
    folder : str or path-like
        Where to save (created).
    seed : int, default=0
        Seed of the random weights.
    image_size : int, default=32
        Side of the model's input images (a multiple of 8).

    Returns
    -------
    str
        The absolute folder.
    """
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = os.path.abspath(os.fspath(folder))
    vocab = _clip_vocab()
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 77,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": image_size,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
        ),
        tokenizer=CLIPTokenizer(vocab=dict(vocab), merges=[], model_max_length=77),
    )
    without_progress_bars(lambda: (model.save_pretrained(folder), processor.save_pretrained(folder)))
    return folder


def build_tiny_vlm(folder: str | os.PathLike, seed: int = 0, image_size: int = 32) -> str:
    """Save a tiny LLaVA-style vision-language model with random weights and its processor (offline, ~2 s).

    A real transformers ``LlavaForConditionalGeneration`` from a small ``LlavaConfig`` (a
    2-layer CLIP vision tower with 8-pixel patches, a 2-layer Llama language model of width
    32), a ``LlavaProcessor`` whose tokenizer works on characters (a ``tokenizers`` BPE model
    without merges over printable ASCII, plus the ``<image>`` token) and the LLaVA-1.5 chat
    template (``USER: <image>\\n... ASSISTANT:``). The folder loads with
    ``VQAScorer(folder)`` and costs like LLaVA-1.5 (``model_type="llava"``).

    Parameters
    ----------
    folder : str or path-like
        Where to save (created).
    seed : int, default=0
        Seed of the random weights.
    image_size : int, default=32
        Side of the model's input images (a multiple of 8).

    Returns
    -------
    str
        The absolute folder.
    """
    import torch
    from tokenizers import Tokenizer, models
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    folder = os.path.abspath(os.fspath(folder))
    specials = ["<unk>", "<pad>", "<s>", "</s>", "<image>"]
    vocab = {token: i for i, token in enumerate(specials)}
    for ch in string.printable:
        vocab.setdefault(ch, len(vocab))
    backend = Tokenizer(models.BPE(vocab=dict(vocab), merges=[], unk_token="<unk>"))
    backend.add_special_tokens(specials)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=image_size,
            patch_size=8,
        ),
        text_config=LlamaConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
            pad_token_id=vocab["<pad>"],
            bos_token_id=vocab["<s>"],
            eos_token_id=vocab["</s>"],
        ),
        image_token_index=vocab["<image>"],
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
        ),
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=_LLAVA_TEMPLATE,
    )
    without_progress_bars(lambda: (model.save_pretrained(folder), processor.save_pretrained(folder)))
    return folder
