"""A diffusers text-to-image pipeline as a routable generator: :class:`DiffusersGenerator`.

The spec stores only settings. Its cost per image is counted (not typed in) from the
component configs with :mod:`costroute.costs`, lazily and without weights; the pipeline is
loaded on first use into the shared :data:`~costroute.generators.pipeline_cache`
(loading itself: :mod:`._loading`). Importing this module does not import torch or diffusers.
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._cache import pipeline_cache
from ._callable import BackendGenerator
from ._loading import (
    _COMPONENT_CLASSES,
    _hub_cache_folder,
    _load_pipeline,
    _pipeline_view,
    _read_json,
    _resolve_device,
    _resolve_dtype,
    known_notices_filtered,
)
from ._spec import COST_UNITS, _check_cost, _check_name

if TYPE_CHECKING:  # pragma: no cover
    from ..costs import PipelineCost

__all__ = ["DiffusersGenerator", "KNOWN_MODELS", "KnownModel", "SCHEDULERS"]


#: Scheduler names accepted by ``DiffusersGenerator(scheduler=...)``: diffusers class and
#: extra ``from_config`` arguments. Each is built with ``Class.from_config(pipeline.scheduler.config)``.
SCHEDULERS: Mapping[str, tuple[str, dict]] = {
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "kdpm2": ("KDPM2DiscreteScheduler", {}),
    "kdpm2_a": ("KDPM2AncestralDiscreteScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {}),
    "dpm++_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "dpm++_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "dpm_single": ("DPMSolverSinglestepScheduler", {}),
    "deis": ("DEISMultistepScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lcm": ("LCMScheduler", {}),
    "tcd": ("TCDScheduler", {}),
}

#: Second-order solvers evaluate the denoiser twice per step but once at the last one
#: (diffusers gives them ``2 * steps - 1`` timesteps); the cost counts those evaluations.
_SECOND_ORDER = frozenset({"HeunDiscreteScheduler", "KDPM2DiscreteScheduler", "KDPM2AncestralDiscreteScheduler"})

_DTYPES = {
    "auto": "auto",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float64": "float64",
    "fp64": "float64",
    "double": "float64",
}


@dataclasses.dataclass(frozen=True)
class KnownModel:
    """What costroute knows about a hub id without downloading it.

    Attributes
    ----------
    arch : str
        Shipped architecture whose published configs cost it (see :data:`costroute.costs.ARCHITECTURES`).
    resolution : int
        The pipeline's default image side in pixels (``unet.sample_size x 8``).
    embedded_guidance : bool
        The denoiser takes the guidance scale as an input (LCM-distilled UNets with
        ``time_cond_proj_dim``), so diffusers runs no classifier-free guidance batch.
    """

    arch: str
    resolution: int
    embedded_guidance: bool = False


#: Hub ids costed from the shipped configs (:mod:`costroute.costs`) without any download.
KNOWN_MODELS: Mapping[str, KnownModel] = {
    "stabilityai/stable-diffusion-xl-base-1.0": KnownModel("sdxl", 1024),
    "stabilityai/sdxl-turbo": KnownModel("sdxl", 512),
    "latent-consistency/lcm-sdxl": KnownModel("sdxl", 1024, embedded_guidance=True),
    "stable-diffusion-v1-5/stable-diffusion-v1-5": KnownModel("sd15", 512),
    "runwayml/stable-diffusion-v1-5": KnownModel("sd15", 512),
    "CompVis/stable-diffusion-v1-4": KnownModel("sd15", 512),
    "stabilityai/stable-diffusion-2-1": KnownModel("sd21", 768),
    "stabilityai/stable-diffusion-2-1-base": KnownModel("sd21", 512),
    "PixArt-alpha/PixArt-XL-2-1024-MS": KnownModel("pixart_alpha", 1024),
    "PixArt-alpha/PixArt-XL-2-512x512": KnownModel("pixart_alpha", 512),
}

# settings that are DiffusersGenerator parameters; every other setting is a pipeline-call kwarg
_OWN_KEYS = (
    "model",
    "steps",
    "guidance_scale",
    "height",
    "width",
    "scheduler",
    "dtype",
    "device",
    "arch",
    "components",
    "load_kwargs",
)
# settings that change the cost per image
_COST_KEYS = frozenset({"model", "steps", "guidance_scale", "height", "width", "scheduler", "arch", "components"})


# ----------------------------------------------------------------------------- validation
def _looks_like_path(model: str) -> bool:
    return (
        os.path.isabs(model)
        or model.startswith((".", "~"))
        or "\\" in model
        or model.count("/") > 1
        or os.path.exists(os.path.expanduser(model))
    )


def _check_model(model: Any, name: str) -> str:
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str) or not model.strip():
        raise TypeError(f"model of generator {name!r} must be a hub id ('org/name') or a local folder, got {model!r}")
    if _looks_like_path(model):
        folder = os.path.abspath(os.path.expanduser(model))
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"model folder {model!r} of generator {name!r} does not exist; pass a folder written by "
                "DiffusionPipeline.save_pretrained or a hub id such as 'stabilityai/sdxl-turbo'"
            )
        if not os.path.isfile(os.path.join(folder, "model_index.json")):
            raise FileNotFoundError(
                f"model folder {model!r} of generator {name!r} has no model_index.json; pass a folder written "
                "by DiffusionPipeline.save_pretrained"
            )
        return folder
    return model


def _check_positive_int(value: Any, what: str, multiple: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1 or value % multiple:
        extra = f" multiple of {multiple}" if multiple > 1 else ""
        raise ValueError(f"{what} must be a positive integer{extra}, got {value!r}")
    return int(value)


def _check_scheduler(scheduler: Any) -> str | None:
    if scheduler is None:
        return None
    if not isinstance(scheduler, str) or scheduler.lower() not in SCHEDULERS:
        raise ValueError(
            f"unknown scheduler {scheduler!r}; valid schedulers are {sorted(SCHEDULERS)} or None (the pipeline's own)"
        )
    return scheduler.lower()


def _check_dtype(dtype: Any) -> str:
    if type(dtype).__module__ == "torch":  # a torch.dtype, without importing torch
        dtype = str(dtype).removeprefix("torch.")
    if not isinstance(dtype, str) or dtype.lower() not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; valid dtypes are {sorted(set(_DTYPES))} or a torch.dtype")
    return _DTYPES[dtype.lower()]


def _check_device(device: Any) -> str:
    if type(device).__module__ == "torch":
        device = str(device)
    if not isinstance(device, str) or not device:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device, got {device!r}")
    return device


def _check_components(components: Any, name: str) -> dict:
    if components is None:
        return {}
    if not isinstance(components, Mapping):
        raise TypeError(f"components of generator {name!r} must be a dict component -> model, got {components!r}")
    out = {}
    for key, source in components.items():
        if key not in _COMPONENT_CLASSES:
            raise ValueError(
                f"cannot replace component {key!r}; replaceable components are {sorted(_COMPONENT_CLASSES)}"
            )
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        if not isinstance(source, str) or not source:
            raise TypeError(f"components[{key!r}] must be a hub id or a local folder, got {source!r}")
        out[key] = os.path.abspath(os.path.expanduser(source)) if _looks_like_path(source) else source
    return out


# ----------------------------------------------------------------------------- cost
def _component_config_path(source: str, component: str) -> str | None:
    for candidate in (os.path.join(source, component, "config.json"), os.path.join(source, "config.json")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _embedded_guidance(source: str, component: str = "unet") -> bool:
    """Whether the denoiser at ``source`` takes guidance as an input (``time_cond_proj_dim``)."""
    known = KNOWN_MODELS.get(source)
    if known is not None:
        return known.embedded_guidance
    if os.path.isdir(source):
        path = _component_config_path(source, component)
        if path is not None:
            return _read_json(path).get("time_cond_proj_dim") is not None
    return False


def _folder_scheduler_class(folder: str) -> str | None:
    path = os.path.join(folder, "scheduler", "scheduler_config.json")
    return _read_json(path).get("_class_name") if os.path.isfile(path) else None


def _compute_cost(settings: Mapping[str, Any], name: str, progress: bool = True) -> PipelineCost:
    from .. import costs

    model = settings["model"]
    steps = settings["steps"]
    height, width = settings["height"], settings["width"]
    components = settings.get("components") or {}
    denoiser_source = components.get("unet") or components.get("transformer")
    scheduler = settings["scheduler"]
    local = os.path.isdir(model)
    scheduler_class = SCHEDULERS[scheduler][0] if scheduler else (_folder_scheduler_class(model) if local else None)
    evaluations = 2 * steps - 1 if scheduler_class in _SECOND_ORDER else steps
    embedded = _embedded_guidance(denoiser_source) if denoiser_source else _embedded_guidance(model)
    guidance = settings["guidance_scale"] > 1 and not embedded

    folder = model if local else None
    info = None
    if folder is None:
        arch = settings.get("arch")
        if arch is not None:
            info = KnownModel(arch, costs.NATIVE_RESOLUTION[arch])
        else:
            info = KNOWN_MODELS.get(model)
        if info is None:
            folder = _hub_cache_folder(model)
    if folder is not None:
        if denoiser_source is None and not local:
            embedded = _embedded_guidance(folder)
            guidance = settings["guidance_scale"] > 1 and not embedded
        return costs.cost_from_pretrained(
            folder, height=height, width=width, steps=evaluations, guidance=guidance, progress=progress
        )
    if info is None:
        raise ValueError(
            f"cannot compute the cost of generator {name!r}: {model!r} is not a local folder, not in the local "
            f"Hugging Face cache and not a known hub id ({sorted(KNOWN_MODELS)}); pass arch= one of "
            f"{list(costs.ARCHITECTURES)} to cost it from the shipped configs, or an explicit cost="
        )
    if info.arch == "deepfloyd_if":
        raise ValueError(
            "DeepFloyd IF is a two-stage cascade, not one text-to-image pipeline; use "
            "costroute.generators.presets.get('deepfloyd-if') instead"
        )
    side = info.resolution
    return costs.pipeline_cost(
        info.arch, height=height or side, width=width or side, steps=evaluations, guidance=guidance, progress=progress
    )


# ----------------------------------------------------------------------------- the spec
class _CountedCostGenerator(BackendGenerator):
    """Base of the backends whose cost is counted lazily unless given (``_cost``, ``_explicit_cost``).

    Equality ignores a counted cost (it follows from the settings) and compares an
    explicit one, so that a spec compares equal before and after its cost is counted.
    """

    _cost: float | None
    _explicit_cost: bool

    def _set_settings(
        self, settings: dict, load_kwargs: Mapping[str, Any] | None, pipeline_kwargs: dict, cost: float | None
    ) -> None:
        """Store validated settings, extra load/call arguments and an explicit cost, if any."""
        if load_kwargs:
            settings["load_kwargs"] = dict(load_kwargs)
        settings.update(pipeline_kwargs)
        self.settings = settings
        self._explicit_cost = cost is not None
        self._cost = None if cost is None else _check_cost(cost, self.name)

    def count_cost(self, progress: bool = True) -> float:
        """The cost per image, counted now unless it is known (given, or counted before).

        Like reading :attr:`cost`, with ``progress`` choosing whether the count shows a bar.
        """
        if self._cost is None:
            self._cost = float(self.cost_breakdown(progress=progress).total)
        return self._cost

    def _key(self) -> tuple:
        return (
            type(self),
            self.name,
            self._cost if self._explicit_cost else None,
            self.cost_unit,
            repr(sorted(self.settings.items())),
        )


class DiffusersGenerator(_CountedCostGenerator):
    """A diffusers text-to-image pipeline at given settings, as a routable generator.

    Nothing is loaded in ``__init__`` or at import. The cost per image (FLOPs) is
    counted from the component configs with :mod:`costroute.costs` on first access of
    :attr:`cost`: a local folder's own ``config.json`` files, or the shipped published
    configs of a known hub id (:data:`KNOWN_MODELS`), at this spec's steps, resolution and
    guidance. Weights are loaded on first :meth:`load`/:meth:`generate_images` into the
    shared :data:`~costroute.generators.pipeline_cache`, keyed by (model, dtype, device), so
    specs that differ only in steps, guidance or scheduler share one set of weights.

    Parameters
    ----------
    name : str
        Unique generator name.
    model : str or path-like
        A hub id (``"stabilityai/sdxl-turbo"``) or a local folder written by
        ``save_pretrained`` (loaded with ``local_files_only=True``, through the pipeline
        class its ``model_index.json`` names).
    steps : int, default=50
        Denoising steps (``num_inference_steps``).
    guidance_scale : float, default=7.5
        Classifier-free guidance scale. The cost counts a doubled denoiser batch when it
        is > 1 and the denoiser does not take guidance as an input (LCM-distilled UNets).
    height, width : int or None, default=None
        Image size in pixels (multiples of 8); ``None`` is the pipeline's default
        (``unet.sample_size x vae scale factor``).
    scheduler : str or None, default=None
        A name from :data:`SCHEDULERS` ("ddim", "euler", "euler_a", "dpm++", "lcm",
        "pndm", "heun", "unipc", ...), built with ``from_config`` of the pipeline's own
        scheduler for every call; ``None`` keeps the pipeline's scheduler. Second-order
        solvers ("heun", "kdpm2", "kdpm2_a") cost ``2 * steps - 1`` denoiser evaluations.
    dtype : {"auto", "float16", "bfloat16", "float32", "float64"} or torch.dtype, default="auto"
        Weights' dtype; "auto" is float16 on CUDA and float32 otherwise. "float64" is a
        reference precision in which images do not depend on the batch size even at the
        floating-point level (see :meth:`RoutingPlan.generate <costroute.RoutingPlan.generate>`).
    device : str or torch.device, default="auto"
        "auto" is CUDA when available, else CPU.
    cost : float or None, default=None
        An explicit cost per image, which wins over the counted one (and is kept by
        :meth:`clone`).
    arch : str or None, keyword-only
        Cost a hub id that is not in :data:`KNOWN_MODELS` from a shipped architecture's
        configs (:data:`costroute.costs.ARCHITECTURES`).
    components : dict or None, keyword-only
        Replace pipeline components at load time: ``{"unet": "latent-consistency/lcm-sdxl"}``.
        Keys among "unet", "transformer", "vae"; values hub ids or folders. The cost uses the
        base model's architecture (the replacement must share it).
    load_kwargs : dict or None, keyword-only
        Extra ``from_pretrained`` arguments (``variant="fp16"``, ``revision``, ...).
    **pipeline_kwargs
        Extra arguments of every pipeline call (``negative_prompt``, ``eta``, ...).

    Examples
    --------
    >>> from costroute.generators import DiffusersGenerator
    >>> turbo = DiffusersGenerator("turbo-1", "stabilityai/sdxl-turbo", steps=1, guidance_scale=0.0,
    ...                            height=512, width=512)
    >>> round(turbo.cost / 1e12, 2)          # doctest: +SKIP
    4.21
    >>> turbo.clone(name="turbo-4", steps=4).steps
    4
    """

    def __init__(
        self,
        name: str,
        model: str | os.PathLike,
        steps: int = 50,
        guidance_scale: float = 7.5,
        height: int | None = None,
        width: int | None = None,
        scheduler: str | None = None,
        dtype: Any = "auto",
        device: Any = "auto",
        cost: float | None = None,
        *,
        arch: str | None = None,
        components: Mapping[str, str] | None = None,
        load_kwargs: Mapping[str, Any] | None = None,
        **pipeline_kwargs: Any,
    ):
        self.name = _check_name(name)
        self.cost_unit = "flops"
        if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, numbers.Real) or not guidance_scale >= 0:
            raise ValueError(f"guidance_scale must be a real number >= 0, got {guidance_scale!r}")
        if arch is not None:
            from ..costs import ARCHITECTURES

            if arch not in ARCHITECTURES:
                raise ValueError(f"unknown arch {arch!r}; valid architectures are {list(ARCHITECTURES)}")
        if load_kwargs is not None and not isinstance(load_kwargs, Mapping):
            raise TypeError(f"load_kwargs must be a dict of from_pretrained arguments, got {load_kwargs!r}")
        settings: dict[str, Any] = {
            "model": _check_model(model, self.name),
            "steps": _check_positive_int(steps, "steps"),
            "guidance_scale": float(guidance_scale),
            "height": None if height is None else _check_positive_int(height, "height", 8),
            "width": None if width is None else _check_positive_int(width, "width", 8),
            "scheduler": _check_scheduler(scheduler),
            "dtype": _check_dtype(dtype),
            "device": _check_device(device),
        }
        if arch is not None:
            settings["arch"] = arch
        if components:
            settings["components"] = _check_components(components, self.name)
        self._set_settings(settings, load_kwargs, pipeline_kwargs, cost)
        self._breakdown = None

    # -- settings as attributes
    model = property(lambda self: self.settings["model"], doc="Hub id or absolute local folder.")
    steps = property(lambda self: self.settings["steps"], doc="Denoising steps.")
    guidance_scale = property(lambda self: self.settings["guidance_scale"], doc="Guidance scale.")
    height = property(lambda self: self.settings["height"], doc="Image height in pixels (None: pipeline default).")
    width = property(lambda self: self.settings["width"], doc="Image width in pixels (None: pipeline default).")
    scheduler = property(lambda self: self.settings["scheduler"], doc="Scheduler name or None.")
    dtype = property(lambda self: self.settings["dtype"], doc="Requested dtype ('auto' resolved at load).")
    device = property(lambda self: self.settings["device"], doc="Requested device ('auto' resolved at load).")

    @property
    def pipeline_kwargs(self) -> dict:
        """Extra keyword arguments passed to every pipeline call."""
        return {k: v for k, v in self.settings.items() if k not in _OWN_KEYS}

    # -- cost
    @property
    def cost(self) -> float:
        """FLOPs per image, counted from the configs on first access (or the explicit cost)."""
        if self._cost is None:
            self.cost_breakdown()
        return self._cost

    @cost.setter
    def cost(self, value: float) -> None:
        self._cost = _check_cost(value, self.name)
        self._explicit_cost = True
        self._breakdown = None

    def cost_breakdown(self, progress: bool = True) -> PipelineCost:
        """Per-component FLOPs (a :class:`costroute.costs.PipelineCost`), counted even when the cost is explicit.

        ``progress`` shows a bar (stderr) while the components are counted.
        """
        if self._breakdown is None:
            breakdown = _compute_cost(self.settings, self.name, progress)
            if self._explicit_cost:
                return breakdown
            self._breakdown = breakdown
            self._cost = float(breakdown.total)
        return self._breakdown

    def clone(self, **changes: Any) -> DiffusersGenerator:
        """A re-validated copy with ``changes`` applied (no weights are copied).

        Changing steps, guidance, resolution, scheduler or model re-counts the cost,
        unless the cost is explicit (then it is kept) or ``cost=`` is among the changes.
        """
        unit = changes.pop("cost_unit", self.cost_unit)
        if unit not in COST_UNITS:
            raise ValueError(f"cost_unit must be one of {COST_UNITS}, got {unit!r}")
        name = changes.pop("name", self.name)
        cost = changes.pop("cost", self._cost if self._explicit_cost else None)
        settings = copy.deepcopy({**self.settings, **changes})
        own = {k: settings.pop(k) for k in _OWN_KEYS if k in settings}
        new = type(self)(name, cost=cost, **own, **settings)
        new.cost_unit = unit
        if cost is None and self._cost is not None and not (_COST_KEYS & set(changes)):
            new._cost, new._breakdown = self._cost, copy.deepcopy(self._breakdown)
        return new

    def __repr__(self) -> str:
        cost = f"{self._cost:.4g}" if self._cost is not None else "<not counted yet>"
        extra = "".join(f", {k}={v!r}" for k, v in self.settings.items() if v is not None)
        return f"{type(self).__name__}(name={self.name!r}, cost={cost}, cost_unit={self.cost_unit!r}{extra})"

    # -- loading and running
    def _load_key(self) -> tuple:
        device = _resolve_device(self.device)
        dtype = _resolve_dtype(self.dtype, device)
        components = tuple(sorted((self.settings.get("components") or {}).items()))
        load_kwargs = repr(sorted((self.settings.get("load_kwargs") or {}).items()))
        return (self.model, dtype, device, components, load_kwargs)

    def load(self) -> Any:
        """The loaded pipeline, from :data:`~costroute.generators.pipeline_cache` or freshly loaded into it.

        Returns
        -------
        diffusers.DiffusionPipeline
            The *shared* pipeline: do not change its scheduler or settings in place.

        Raises
        ------
        OSError
            The folder or hub id cannot be loaded (the message names it).
        """
        key = self._load_key()
        model, dtype, device, components, load_kwargs = key
        return pipeline_cache.get(
            key,
            lambda: _load_pipeline(model, dtype, device, dict(components), self.settings.get("load_kwargs") or {}),
        )

    def unload(self) -> None:
        """Drop this spec's pipeline from the cache (also for every spec sharing it)."""
        pipeline_cache.evict(self._load_key())

    def _scheduler_for(self, pipe: Any) -> Any:
        base = pipe.scheduler
        if self.scheduler is None:
            return type(base).from_config(base.config)
        import diffusers

        class_name, extra = SCHEDULERS[self.scheduler]
        return getattr(diffusers, class_name).from_config(base.config, **extra)

    def pipeline(self) -> Any:
        """A pipeline object for this spec's settings: the cached modules with a fresh scheduler."""
        pipe = self.load()
        return _pipeline_view(pipe, self._scheduler_for(pipe))

    def generate_images(self, prompts: Sequence[str], seeds: Sequence[int]) -> list:
        """Make one image per prompt, each from its own CPU ``torch.Generator`` seeded with ``seeds[i]``.

        Per-image CPU generators make the initial noise of a prompt independent of the
        batch it is in and of the device.

        Parameters
        ----------
        prompts : sequence of str
        seeds : sequence of int

        Returns
        -------
        list of PIL.Image.Image
        """
        import torch

        prompts, seeds = self._check_batch(prompts, seeds)
        prompts = [str(p) for p in prompts]
        if not prompts:
            return []
        pipe = self.pipeline()
        kwargs: dict[str, Any] = {
            "prompt": prompts,
            "num_inference_steps": self.steps,
            "guidance_scale": self.guidance_scale,
            "generator": [torch.Generator(device="cpu").manual_seed(s) for s in seeds],
            "output_type": "pil",
        }
        if self.height is not None:
            kwargs["height"] = self.height
        if self.width is not None:
            kwargs["width"] = self.width
        for key, value in self.pipeline_kwargs.items():
            # diffusers wants a negative prompt of the prompt's type: one per prompt
            kwargs[key] = (
                [value] * len(prompts) if key.startswith("negative_prompt") and isinstance(value, str) else value
            )
        with known_notices_filtered():  # CLIP's notice on prompts over 77 tokens: truncating is expected
            images = list(pipe(**kwargs).images)
        if len(images) != len(prompts):
            raise RuntimeError(f"pipeline of {self.name!r} returned {len(images)} images for {len(prompts)} prompts")
        return images
