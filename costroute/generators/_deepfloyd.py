"""DeepFloyd IF (stage I then stage II) as one routable generator: :class:`DeepFloydIFGenerator`."""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._cache import pipeline_cache
from ._diffusers import _check_device, _check_dtype, _check_model, _check_positive_int, _CountedCostGenerator
from ._loading import _load_any_pipeline, _pipeline_view, _resolve_device, _resolve_dtype
from ._spec import COST_UNITS, _check_cost, _check_name

if TYPE_CHECKING:  # pragma: no cover
    from ..costs import PipelineCost

__all__ = ["DeepFloydIFGenerator"]


def _check_pair(value: Any, what: str, check) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{what} must be a pair (stage I, stage II), got {value!r}")
    return tuple(check(v) for v in value)


def _check_scale(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"guidance scales must be real numbers >= 0, got {value!r}")
    return float(value)


class DeepFloydIFGenerator(_CountedCostGenerator):
    """DeepFloyd IF as one generator: stage I (64 px) then stage II (x4, 256 px) on one T5 encoding.

    IF is a cascade of pixel-space pipelines, not one text-to-image pipeline, so it gets
    its own backend. Both stages load lazily into the shared
    :data:`~costroute.generators.pipeline_cache` (stage II without a text encoder: it
    reuses stage I's embeddings), as two entries: the cache must hold at least two
    pipelines (``pipeline_cache.max_loaded >= 2``, the default), else :meth:`load` raises
    a ``ValueError``. The cost is counted from the shipped IF configs
    (:func:`costroute.costs.pipeline_cost` with ``arch="deepfloyd_if"``). Stage III (the
    Stable Diffusion x4 upscaler to 1024 px) is neither run nor counted.

    Parameters
    ----------
    name : str
        Unique generator name.
    stage_1, stage_2 : str, default "DeepFloyd/IF-I-XL-v1.0", "DeepFloyd/IF-II-L-v1.0"
        Hub ids or local folders of the two stages (the hub weights are gated: accept the
        licence and log in first).
    steps : (int, int), default=(100, 50)
        Denoising steps of stage I and stage II (diffusers' defaults).
    guidance_scale : (float, float), default=(7.0, 4.0)
        Guidance scales of the two stages (diffusers' defaults); a stage guides (denoiser
        batch of 2) when its scale is > 1.
    dtype, device : see :class:`DiffusersGenerator`
    cost : float or None, default=None
        Explicit cost per image; wins over the counted one.
    load_kwargs : dict or None, keyword-only
        Extra ``from_pretrained`` arguments for both stages (``variant="fp16"``).
    **pipeline_kwargs
        Extra arguments of both stage calls.
    """

    def __init__(
        self,
        name: str,
        stage_1: str = "DeepFloyd/IF-I-XL-v1.0",
        stage_2: str = "DeepFloyd/IF-II-L-v1.0",
        steps: tuple[int, int] = (100, 50),
        guidance_scale: tuple[float, float] = (7.0, 4.0),
        dtype: Any = "auto",
        device: Any = "auto",
        cost: float | None = None,
        *,
        load_kwargs: Mapping[str, Any] | None = None,
        **pipeline_kwargs: Any,
    ):
        self.name = _check_name(name)
        self.cost_unit = "flops"
        settings: dict[str, Any] = {
            "stage_1": _check_model(stage_1, self.name),
            "stage_2": _check_model(stage_2, self.name),
            "steps": _check_pair(steps, "steps", lambda s: _check_positive_int(s, "steps")),
            "guidance_scale": _check_pair(guidance_scale, "guidance_scale", _check_scale),
            "dtype": _check_dtype(dtype),
            "device": _check_device(device),
        }
        self._set_settings(settings, load_kwargs, pipeline_kwargs, cost)

    _OWN = ("stage_1", "stage_2", "steps", "guidance_scale", "dtype", "device", "load_kwargs")

    @property
    def cost(self) -> float:
        """FLOPs per image of both stages, counted on first access (or the explicit cost)."""
        if self._cost is None:
            self._cost = float(self.cost_breakdown().total)
        return self._cost

    @cost.setter
    def cost(self, value: float) -> None:
        self._cost = _check_cost(value, self.name)
        self._explicit_cost = True

    def cost_breakdown(self, progress: bool = True) -> PipelineCost:
        """Per-component FLOPs from the shipped IF configs (:class:`costroute.costs.PipelineCost`).

        ``progress`` shows a bar (stderr) while the components are counted.
        """
        from ..costs import pipeline_cost

        g1, g2 = self.settings["guidance_scale"]
        return pipeline_cost("deepfloyd_if", steps=self.settings["steps"], guidance=(g1 > 1, g2 > 1), progress=progress)

    def clone(self, **changes: Any) -> DeepFloydIFGenerator:
        """A re-validated copy with ``changes`` applied (the counted cost is re-counted)."""
        unit = changes.pop("cost_unit", self.cost_unit)
        if unit not in COST_UNITS:
            raise ValueError(f"cost_unit must be one of {COST_UNITS}, got {unit!r}")
        name = changes.pop("name", self.name)
        cost = changes.pop("cost", self._cost if self._explicit_cost else None)
        settings = copy.deepcopy({**self.settings, **changes})
        own = {k: settings.pop(k) for k in self._OWN if k in settings}
        new = type(self)(name, cost=cost, **own, **settings)
        new.cost_unit = unit
        return new

    def __repr__(self) -> str:
        cost = f"{self._cost:.4g}" if self._cost is not None else "<not counted yet>"
        extra = "".join(f", {k}={v!r}" for k, v in self.settings.items())
        return f"{type(self).__name__}(name={self.name!r}, cost={cost}, cost_unit={self.cost_unit!r}{extra})"

    def _load_keys(self) -> tuple[tuple, tuple]:
        device = _resolve_device(self.settings["device"])
        dtype = _resolve_dtype(self.settings["dtype"], device)
        load_kwargs = repr(sorted((self.settings.get("load_kwargs") or {}).items()))
        return (
            (self.settings["stage_1"], dtype, device, (), load_kwargs),
            (self.settings["stage_2"], dtype, device, (("text_encoder", None),), load_kwargs),
        )

    def load(self) -> tuple[Any, Any]:
        """Both stage pipelines, from the cache or freshly loaded into it.

        The two stages are two entries of :data:`~costroute.generators.pipeline_cache`,
        so it must hold at least two pipelines: with ``max_loaded=1`` loading stage II
        would evict stage I and both would reload for every batch.

        Raises
        ------
        ValueError
            If ``pipeline_cache.max_loaded < 2`` (raised before anything is loaded).
        OSError
            A stage cannot be loaded (the message names it).
        """
        if pipeline_cache.max_loaded < 2:
            raise ValueError(
                f"DeepFloydIFGenerator {self.name!r} holds two pipelines (stage I and stage II) in the pipeline "
                f"cache, but pipeline_cache.max_loaded is {pipeline_cache.max_loaded}; set "
                "costroute.generators.pipeline_cache.max_loaded = 2 or more"
            )
        load_kwargs = self.settings.get("load_kwargs") or {}
        first, second = self._load_keys()
        stage_1 = pipeline_cache.get(first, lambda: _load_any_pipeline(first[0], first[1], first[2], load_kwargs))
        stage_2 = pipeline_cache.get(
            second,
            lambda: _load_any_pipeline(second[0], second[1], second[2], {**load_kwargs, "text_encoder": None}),
        )
        return stage_1, stage_2

    def unload(self) -> None:
        """Drop both stages from the cache."""
        for key in self._load_keys():
            pipeline_cache.evict(key)

    def generate_images(self, prompts: Sequence[str], seeds: Sequence[int]) -> list:
        """Run stage I then stage II; every image uses its own CPU generator per stage, seeded with its seed."""
        import torch

        prompts, seeds = self._check_batch(prompts, seeds)
        prompts = [str(p) for p in prompts]
        if not prompts:
            return []
        stage_1, stage_2 = self.load()
        first = _pipeline_view(stage_1, type(stage_1.scheduler).from_config(stage_1.scheduler.config))
        second = _pipeline_view(stage_2, type(stage_2.scheduler).from_config(stage_2.scheduler.config))
        (steps_1, steps_2), (scale_1, scale_2) = self.settings["steps"], self.settings["guidance_scale"]
        extra = {k: v for k, v in self.settings.items() if k not in self._OWN}
        prompt_embeds, negative_embeds = first.encode_prompt(
            prompts, do_classifier_free_guidance=max(scale_1, scale_2) > 1, device=first._execution_device
        )

        def generators():
            return [torch.Generator(device="cpu").manual_seed(s) for s in seeds]

        low = first(
            prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_embeds,
            num_inference_steps=steps_1,
            guidance_scale=scale_1,
            generator=generators(),
            output_type="pt",
            **extra,
        ).images
        images = second(
            image=low,
            prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_embeds,
            num_inference_steps=steps_2,
            guidance_scale=scale_2,
            generator=generators(),
            output_type="pil",
            **extra,
        ).images
        return list(images)
