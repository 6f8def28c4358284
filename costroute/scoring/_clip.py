"""CLIPScore (and PickScore) of an image for its prompt: :class:`CLIPScorer`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._model import ModelScorer

__all__ = ["CLIP_OUTPUTS", "CLIPScorer"]

#: What :class:`CLIPScorer` returns, from the cosine ``cos`` of the image and text embeddings.
CLIP_OUTPUTS = ("clipscore", "cosine", "logit")


class CLIPScorer(ModelScorer):
    """Image-text similarity of a CLIP model: CLIPScore, the raw cosine, or PickScore's logit.

    The image and the prompt are embedded by the model's two towers and projections
    (``visual_projection(vision_model(...).pooler_output)`` and likewise for text), and
    ``cos`` is the cosine of the two embeddings, computed in float32. The score is

    * ``output="clipscore"`` (default): ``max(100 * cos, 0)``, CLIPScore as in
      torchmetrics (Hessel et al., 2021, with the weight 100 instead of the paper's 2.5);
    * ``output="cosine"``: ``cos`` itself, in [-1, 1] (the scale of the GenAI-Bench teaser's
      ``clip`` column, about 0.2-0.3 for matching pairs);
    * ``output="logit"``: ``exp(logit_scale) * cos``, the model's own logit. This is
      **PickScore** with ``model="yuvalkirstain/PickScore_v1"`` and
      ``processor="laion/CLIP-ViT-H-14-laion2B-s32B-b79K"`` (PickScore's checkpoint has no
      processor of its own).

    Prompts longer than the text tower reads (77 tokens) are truncated. Nothing is loaded in
    ``__init__``; the model and processor load on first :meth:`score` into the shared
    :data:`costroute.generators.pipeline_cache`.

    Parameters
    ----------
    model : str or path-like, default="openai/clip-vit-large-patch14"
        Hub id or local folder (``save_pretrained``) of a ``CLIPModel``. A local folder is
        loaded with ``local_files_only=True``.
    processor : str or path-like, optional
        Hub id or folder of the processor (tokenizer + image processor); default ``model``.
    output : {"clipscore", "cosine", "logit"}, default="clipscore"
        See above.
    name : str, optional
        Default ``"<output>:<model's last path component>"``.
    batch_size : int, default=32
        Images per forward pass when :meth:`score` gets none.
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"} or torch.device, default="auto"
        "auto" is CUDA when available, else CPU.
    dtype : {"auto", "float16", "bfloat16", "float32"} or torch.dtype, default="auto"
        "auto" is float16 on CUDA, float32 elsewhere.
    cost : float, optional
        Explicit cost per image in ``cost_unit``; by default it is counted from the model's
        config (image tower at its image size + text tower at 77 tokens, see
        :func:`~costroute.scoring.scorer_cost`): 175.3 GFLOPs for CLIP ViT-L/14, 381.7
        GFLOPs for ViT-H/14 (PickScore).
    cost_unit : {"flops", "usd"}, default="flops"
    price_model : GPUPriceModel, optional
        FLOPs to dollars; default :data:`costroute.costs.DEFAULT_PRICE_MODEL`.
    load_kwargs : dict, optional
        Extra ``from_pretrained`` arguments of the model (``revision``, ...).

    Examples
    --------
    >>> from costroute.scoring import CLIPScorer
    >>> clip = CLIPScorer("openai/clip-vit-large-patch14")
    >>> round(clip.cost / 1e9, 1)                                    # doctest: +SKIP
    175.3
    >>> clip.score(["a red bicycle"], [image])                       # doctest: +SKIP
    array([31.2])
    >>> pick = CLIPScorer("yuvalkirstain/PickScore_v1", processor="laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
    ...                   output="logit", name="pickscore")
    """

    _default_batch_size = 32

    def __init__(
        self,
        model: str | os.PathLike = "openai/clip-vit-large-patch14",
        *,
        processor: str | os.PathLike | None = None,
        output: str = "clipscore",
        name: str | None = None,
        batch_size: int | None = None,
        device: Any = "auto",
        dtype: Any = "auto",
        cost: float | None = None,
        cost_unit: str = "flops",
        price_model: Any = None,
        load_kwargs: Mapping[str, Any] | None = None,
    ):
        if output not in CLIP_OUTPUTS:
            raise ValueError(f"output must be one of {list(CLIP_OUTPUTS)}, got {output!r}")
        self.output = output
        self._prefix = output
        super().__init__(
            model,
            processor=processor,
            name=name,
            batch_size=batch_size,
            device=device,
            dtype=dtype,
            cost=cost,
            cost_unit=cost_unit,
            price_model=price_model,
            load_kwargs=load_kwargs,
        )

    def _load_model(self, model: str, processor: str, dtype: str, device: str) -> tuple[Any, Any]:
        from transformers import AutoProcessor, CLIPModel

        from ._model import dtype_kwargs

        proc = self._from_pretrained(AutoProcessor, processor)
        if getattr(proc, "tokenizer", None) is None or getattr(proc, "image_processor", None) is None:
            raise ValueError(
                f"processor {processor!r} must have a tokenizer and an image processor, got a {type(proc).__name__}"
            )
        net = self._from_pretrained(CLIPModel, model, **dtype_kwargs(dtype), **self.load_kwargs)
        return net.to(device).eval(), proc

    def _score_batch(self, prompts: list[str], images: list) -> np.ndarray:
        import torch

        net, proc = self.load()
        longest = int(net.config.text_config.max_position_embeddings)
        max_length = min(int(getattr(proc.tokenizer, "model_max_length", longest) or longest), longest)
        inputs = proc(
            text=prompts, images=images, return_tensors="pt", padding=True, truncation=True, max_length=max_length
        )
        inputs = self._to_device(inputs, net)
        with torch.no_grad():
            image = net.visual_projection(net.vision_model(pixel_values=inputs["pixel_values"]).pooler_output)
            text = net.text_projection(
                net.text_model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask")).pooler_output
            )
            image = torch.nn.functional.normalize(image.float(), dim=-1)
            text = torch.nn.functional.normalize(text.float(), dim=-1)
            cos = (image * text).sum(dim=-1)
            if self.output == "clipscore":
                values = torch.clamp(100.0 * cos, min=0.0)
            elif self.output == "logit":
                values = net.logit_scale.float().exp() * cos
            else:
                values = cos
        return values.cpu().numpy().astype(float)

    def _params(self) -> dict[str, Any]:
        params = super()._params()
        params["output"] = self.output
        return params
