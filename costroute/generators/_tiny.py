"""Tiny Stable Diffusion-style pipelines with random weights, built offline: :func:`build_tiny_pipeline`."""

from __future__ import annotations

import json
import os
from typing import Any

from ._loading import quiet_loading

__all__ = ["build_tiny_pipeline"]


def _tiny_vocab() -> dict[str, int]:
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789,.'-":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    return vocab


def build_tiny_pipeline(folder: str | os.PathLike, kind: str = "sd", seed: int = 0, sample_size: int = 8) -> str:
    """Save a tiny Stable Diffusion-style pipeline with random weights to ``folder`` (offline, ~1 s).

    For tests, examples and smoke runs without a model hub: the components are real
    diffusers/transformers classes (``UNet2DConditionModel``, ``AutoencoderKL`` with the
    usual 4 blocks = 8x downsampling, ``CLIPTextModel`` and, for SDXL,
    ``CLIPTextModelWithProjection``) built from small configs, and a ``CLIPTokenizer`` over
    an in-memory character vocabulary. Images are noise-like, of ``sample_size * 8``
    pixels (64 by default). The folder loads with ``from_pretrained(local_files_only=True)``
    and costs with :func:`costroute.costs.cost_from_pretrained`.

    Parameters
    ----------
    folder : str or path-like
        Where to save (created).
    kind : {"sd", "sdxl"}, default="sd"
        ``StableDiffusionPipeline`` or ``StableDiffusionXLPipeline``.
    seed : int, default=0
        Seed of the random weights.
    sample_size : int, default=8
        Latent side; the default image side is ``8 * sample_size``.

    Returns
    -------
    str
        The absolute folder.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        PNDMScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    if kind not in ("sd", "sdxl"):
        raise ValueError(f"kind must be 'sd' or 'sdxl', got {kind!r}")
    folder = os.path.abspath(os.fspath(folder))
    vocab = _tiny_vocab()
    text = {
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": 1,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "vocab_size": len(vocab),
        "max_position_embeddings": 77,
        "hidden_act": "gelu",
        "projection_dim": 32,
    }
    xl = kind == "sdxl"
    extra_unet: dict[str, Any] = {}
    if xl:
        extra_unet = {
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 8,
            "projection_class_embeddings_input_dim": 6 * 8 + text["projection_dim"],
            "use_linear_projection": True,
        }
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        unet = UNet2DConditionModel(
            sample_size=sample_size,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(16, 32),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=4,
            norm_num_groups=8,
            cross_attention_dim=2 * text["hidden_size"] if xl else text["hidden_size"],
            **extra_unet,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=(8, 8, 8, 8),
            layers_per_block=1,
            norm_num_groups=4,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            sample_size=8 * sample_size,
        )
        text_encoder = CLIPTextModel(CLIPTextConfig(**text))
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**text)) if xl else None
    # the schedulers the real SD 1.5 and SDXL checkpoints ship with
    if xl:
        scheduler = EulerDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            timestep_spacing="leading",
            steps_offset=1,
        )
    else:
        scheduler = PNDMScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            skip_prk_steps=True,
            steps_offset=1,
            set_alpha_to_one=False,
        )
        scheduler.register_to_config(clip_sample=False)

    def tokenizer() -> Any:
        return CLIPTokenizer(vocab=dict(vocab), merges=[], model_max_length=77)

    if xl:
        pipe = StableDiffusionXLPipeline(
            vae=vae,
            text_encoder=text_encoder,
            text_encoder_2=text_encoder_2,
            tokenizer=tokenizer(),
            tokenizer_2=tokenizer(),
            unet=unet,
            scheduler=scheduler,
        )
    else:
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer(),
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    with quiet_loading():  # no "Writing model shards" bars
        pipe.save_pretrained(folder)
    for sub in ("tokenizer", "tokenizer_2"):  # plain vocab/merges files too, for slow-tokenizer loaders
        path = os.path.join(folder, sub)
        if os.path.isdir(path):
            with open(os.path.join(path, "vocab.json"), "w", encoding="utf-8") as f:
                json.dump(vocab, f)
            with open(os.path.join(path, "merges.txt"), "w", encoding="utf-8") as f:
                f.write("#version: 0.2\n")
    return folder
