"""Cost tables of the generators behind the shipped quality matrices (GenAI-Bench, AGIQA-3K).

Neither data file says how its images were generated, so every number here rests on an
assumption that is written down in the text returned next to the registry. Open models are
costed from their real architectures (:func:`costroute.costs.pipeline_cost`); closed ones at
their list price; FLOPs become dollars through :data:`costroute.costs.DEFAULT_PRICE_MODEL`.
"""

from __future__ import annotations

import functools

from ..costs import DEFAULT_PRICE_MODEL, GPUPriceModel, pipeline_cost
from ..generators import GeneratorRegistry, GeneratorSpec

__all__ = ["agiqa3k_generators", "genai_bench_generators"]

_UNITS = ("flops", "usd")

# ---- closed-model prices (USD per image) --------------------------------------------------
#: OpenAI API list price of one DALL-E 3 image, standard quality, 1024x1024.
DALLE3_USD = 0.040
#: OpenAI API list price of one DALL-E 2 image at 1024x1024 (512x512: 0.018, 256x256: 0.016),
#: the price in force when AGIQA-3K was built (2023).
DALLE2_USD = 0.020
#: Midjourney Basic plan: USD 10 per month for 3.3 h of fast GPU time, which Midjourney
#: describes as about 200 generations (one /imagine job ~ 1 GPU-minute, a 4-image grid).
MIDJOURNEY_PLAN_USD_PER_MONTH = 10.0
MIDJOURNEY_GENERATIONS_PER_MONTH = 200
MIDJOURNEY_USD = MIDJOURNEY_PLAN_USD_PER_MONTH / MIDJOURNEY_GENERATIONS_PER_MONTH  # 0.05
#: AGIQA-3K midjourney_lowstep: assumed to be Midjourney's ``--q .5`` quality setting, which
#: Midjourney documents as using half the GPU time of the default ``--q 1``.
MIDJOURNEY_LOWSTEP_FRACTION = 0.5

# ---- AGIQA-3K assumptions ------------------------------------------------------------------
#: Stable Diffusion 1.5 settings of AGIQA-3K (the file has none; the paper's exact numbers
#: could not be retrieved): diffusers defaults for "normal" (50 steps, CFG 7.5, 512 px);
#: "lowstep" assumed 10 steps; "highcorr"/"lowcorr" change only the guidance *scale*, which
#: does not change the compute (guidance stays on, so the UNet batch stays 2).
AGIQA_SD15_SETTINGS = {
    "sd1.5_normal": {"steps": 50, "guidance_scale": 7.5},
    "sd1.5_lowstep": {"steps": 10, "guidance_scale": 7.5},
    "sd1.5_highcorr": {"steps": 50, "guidance_scale": 15.0},
    "sd1.5_lowcorr": {"steps": 50, "guidance_scale": 3.75},
}
#: AttnGAN: one forward of a small convolutional GAN generator, not counted (no architecture
#: shipped). An order-of-magnitude placeholder, stated as such, priced on the GPU model.
ATTNGAN_FLOPS_ESTIMATE = 1e11

_AGIQA_ORDER = (
    "AttnGAN_normal",
    "glide_normal",
    "DALLE2_normal",
    "xl2.2_normal",
    "sd1.5_normal",
    "sd1.5_lowstep",
    "sd1.5_highcorr",
    "sd1.5_lowcorr",
    "midjourney_normal",
    "midjourney_lowstep",
)


def _check_unit(cost_unit: object) -> str:
    if cost_unit not in _UNITS:
        raise ValueError(f"cost_unit must be one of {list(_UNITS)}, got {cost_unit!r}")
    return cost_unit  # type: ignore[return-value]


def _price_text(gpu: GPUPriceModel) -> str:
    return (
        f"GPU price model: {gpu.name} -> USD {gpu.usd_per_hour:g}/h / "
        f"({gpu.peak_flops_per_second / 1e12:g} TFLOP/s x {gpu.utilization:g}) = "
        f"USD {gpu.usd_per_image(1e15):.6f} per PFLOP."
    )


def _fmt(value: float, unit: str) -> str:
    return f"{value:.4g} FLOPs" if unit == "flops" else f"USD {value:.4g}"


# --------------------------------------------------------------------------------------
# GenAI-Bench
# --------------------------------------------------------------------------------------
@functools.cache
def _genai_open_costs() -> tuple[tuple[str, int, dict], ...]:
    """(name, FLOPs per image, settings) of the four open GenAI-Bench generators, file order."""
    rows = [
        (
            "DeepFloyd_I_XL_v1",
            pipeline_cost("deepfloyd_if", steps=(100, 50), guidance=(True, True)),
            {
                "arch": "deepfloyd_if",
                "stages": "IF-I-XL-v1.0 (64 px) + IF-II-L-v1.0 (256 px)",
                "height": 256,
                "width": 256,
                "steps": (100, 50),
                "guidance": True,
                "guidance_scale": (7.0, 4.0),
            },
        ),
        (
            "SDXL_Base",
            pipeline_cost("sdxl", height=1024, width=1024, steps=50, guidance=True),
            {"arch": "sdxl", "height": 1024, "width": 1024, "steps": 50, "guidance": True, "guidance_scale": 5.0},
        ),
        (
            "SDXL_Turbo",
            pipeline_cost("sdxl", height=512, width=512, steps=1, guidance=False),
            {
                "arch": "sdxl",
                "model": "SDXL-Turbo",
                "height": 512,
                "width": 512,
                "steps": 1,
                "guidance": False,
                "guidance_scale": 0.0,
            },
        ),
        (
            "SDXL_2_1",
            pipeline_cost("sd21", height=768, width=768, steps=50, guidance=True),
            {
                "arch": "sd21",
                "model": "Stable Diffusion 2.1 (768-v)",
                "height": 768,
                "width": 768,
                "steps": 50,
                "guidance": True,
                "guidance_scale": 7.5,
            },
        ),
    ]
    return tuple((name, cost.total, settings) for name, cost, settings in rows)


def genai_bench_generators(cost_unit: str = "flops") -> tuple[GeneratorRegistry, str]:
    """Generator registry of GenAI-Bench and a plain-text statement of every cost assumption.

    Parameters
    ----------
    cost_unit : {"flops", "usd"}, default="flops"
        ``"flops"``: the four open generators (DeepFloyd_I_XL_v1, SDXL_Base, SDXL_Turbo,
        SDXL_2_1, in file order) with FLOPs per image counted from their architectures.
        ``"usd"``: all six in file order (DALLE_3, Midjourney_6 first) in US dollars per
        image: list prices for the closed ones, the GPU price model for the open ones.

    Returns
    -------
    registry : GeneratorRegistry
    assumptions : str
        Every assumption behind the costs, with the numbers.

    Raises
    ------
    ValueError
        If ``cost_unit`` is not ``"flops"`` or ``"usd"``.
    """
    unit = _check_unit(cost_unit)
    gpu = DEFAULT_PRICE_MODEL
    open_rows = _genai_open_costs()
    specs = []
    if unit == "usd":
        specs.append(
            GeneratorSpec(
                "DALLE_3",
                DALLE3_USD,
                cost_unit="usd",
                model="dall-e-3",
                height=1024,
                width=1024,
                quality="standard",
                source="OpenAI API list price",
            )
        )
        specs.append(
            GeneratorSpec(
                "Midjourney_6",
                MIDJOURNEY_USD,
                cost_unit="usd",
                model="Midjourney v6",
                source="Basic plan USD 10/month / ~200 generations",
            )
        )
    for name, flops, settings in open_rows:
        cost = float(flops) if unit == "flops" else gpu.usd_per_image(flops)
        extra = {} if unit == "flops" else {"flops": int(flops)}
        specs.append(GeneratorSpec(name, cost, cost_unit=unit, **settings, **extra))
    registry = GeneratorRegistry(specs)

    lines = [
        "GenAI-Bench records no generation settings, so these are assumptions.",
        "Open models are costed in FLOPs per image by counting one forward of each component built from its "
        "published config (costroute.costs.pipeline_cost; multiply-add = 2 FLOPs, attention included): text "
        "encoder(s) once, denoiser steps x (2 with classifier-free guidance), VAE decoder once. Settings are "
        "diffusers' defaults at native resolution unless stated:",
        "- DeepFloyd_I_XL_v1: IF-I-XL-v1.0 at 64 px, 100 steps, guidance (scale 7.0) + IF-II-L-v1.0 at 256 px, "
        "50 steps, guidance (scale 4.0), one T5-XXL encoding of 77 tokens; no stage III upscaler counted.",
        "- SDXL_Base: stable-diffusion-xl-base-1.0, 1024x1024, 50 steps, guidance (scale 5.0); no refiner.",
        "- SDXL_Turbo: SDXL architecture, 512x512, 1 step, no guidance (SDXL-Turbo's recommended use).",
        "- SDXL_2_1: Stable Diffusion 2.1 (768-v), 768x768, 50 steps, guidance (scale 7.5).",
    ]
    for name, flops, _ in open_rows:
        lines.append(f"  {name}: {flops:.4g} FLOPs per image.")
    if unit == "usd":
        lines += [
            f"- DALLE_3: OpenAI API list price, standard quality 1024x1024: USD {DALLE3_USD:.3f} per image.",
            f"- Midjourney_6: Basic plan USD {MIDJOURNEY_PLAN_USD_PER_MONTH:g}/month buys 3.3 h of fast GPU time, "
            f"~{MIDJOURNEY_GENERATIONS_PER_MONTH} generations (one /imagine job of ~1 GPU-minute renders a 4-image "
            f"grid, of which one image is used): USD {MIDJOURNEY_USD:.3f} per image.",
            "- Open models: FLOPs above converted with the GPU price model.",
            _price_text(gpu),
        ]
        for spec in registry:
            lines.append(f"  {spec.name}: {_fmt(spec.cost, 'usd')} per image.")
    return registry, "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# AGIQA-3K
# --------------------------------------------------------------------------------------
def _glide_filtered_flops() -> tuple[int, str]:
    """FLOPs of one GLIDE (filtered) image, counted on architecture-equivalent diffusers models.

    GLIDE (filtered) is openai/glide-text2im: a 64 px text-conditional ADM UNet (192 channels,
    multipliers 1,2,3,4, 3 res blocks, attention at 32/16/8 px with 64-channel heads, text
    transformer 16 layers x 512 over 128 tokens feeding every attention layer's keys/values)
    and a 256 px upsampler (multipliers 1,1,2,2,4,4, 2 res blocks, its own text transformer);
    the reference notebook samples the base for 100 steps with guidance (scale 3) and the
    upsampler for 27 steps ("fast27") without. The same UNet family is what diffusers ships
    for DeepFloyd IF (ResnetDownsample/SimpleCrossAttn blocks), so we build those blocks with
    GLIDE's published hyper-parameters, and a CLIP-style text transformer of the same shape,
    and count them. The text transformer runs inside every denoiser call
    (``cache_text_emb=False`` by default).
    """
    from ..costs import component_cost

    def unet(size: int, mult: tuple[int, ...], res_blocks: int, in_channels: int) -> dict:
        attention_ds = [size // r for r in (32, 16, 8)]
        channels = [192 * m for m in mult]
        down, res = [], 1
        for i in range(len(channels)):
            down.append("SimpleCrossAttnDownBlock2D" if res in attention_ds else "ResnetDownsampleBlock2D")
            if i != len(channels) - 1:
                res *= 2
        up = []
        for _ in channels:
            up.append("SimpleCrossAttnUpBlock2D" if res in attention_ds else "ResnetUpsampleBlock2D")
            res //= 2
        return {
            "_class_name": "UNet2DConditionModel",
            "sample_size": size,
            "in_channels": in_channels,
            "out_channels": 6,
            "block_out_channels": channels,
            "layers_per_block": res_blocks,
            "down_block_types": down,
            "up_block_types": up,
            "mid_block_type": "UNetMidBlock2DSimpleCrossAttn",
            "cross_attention_dim": 512,
            "attention_head_dim": 64,
            "resnet_time_scale_shift": "scale_shift",
            "act_fn": "silu",
            "norm_num_groups": 32,
        }

    xf = {
        "architectures": ["CLIPTextModel"],
        "model_type": "clip_text_model",
        "hidden_size": 512,
        "intermediate_size": 2048,
        "num_hidden_layers": 16,
        "num_attention_heads": 8,
        "max_position_embeddings": 128,
        "vocab_size": 50257,
        "hidden_act": "gelu",
    }
    base_calls, up_calls = 100 * 2, 27
    base = component_cost(
        unet(64, (1, 2, 3, 4), 3, 3), calls=base_calls, height=64, width=64, text_tokens=128, text_dim=512
    )
    up = component_cost(
        unet(256, (1, 1, 2, 2, 4, 4), 2, 6), calls=up_calls, height=256, width=256, text_tokens=128, text_dim=512
    )
    text = component_cost(xf, calls=base_calls + up_calls, text_tokens=128)
    total = base.flops + up.flops + text.flops
    detail = (
        f"base UNet {base.flops_per_call:.4g} FLOPs x {base_calls} ({base.params / 1e6:.1f}M params), "
        f"upsampler {up.flops_per_call:.4g} x {up_calls} ({up.params / 1e6:.1f}M), "
        f"text transformer {text.flops_per_call:.4g} x {base_calls + up_calls} ({text.params / 1e6:.1f}M)"
    )
    return int(total), detail


@functools.cache
def _agiqa_flops() -> dict[str, tuple[int, dict]]:
    out: dict[str, tuple[int, dict]] = {}
    for name, s in AGIQA_SD15_SETTINGS.items():
        cost = pipeline_cost("sd15", height=512, width=512, steps=s["steps"], guidance=True)
        out[name] = (
            cost.total,
            {
                "arch": "sd15",
                "height": 512,
                "width": 512,
                "steps": s["steps"],
                "guidance": True,
                "guidance_scale": s["guidance_scale"],
            },
        )
    xl = pipeline_cost("sdxl", height=512, width=512, steps=50, guidance=True)
    out["xl2.2_normal"] = (
        xl.total,
        {
            "arch": "sdxl",
            "model": "SDXL beta (stable-diffusion-xl-beta-v2-2-2)",
            "height": 512,
            "width": 512,
            "steps": 50,
            "guidance": True,
            "guidance_scale": 7.5,
            "architecture_assumed": "SDXL 1.0",
        },
    )
    return out


@functools.cache
def _glide_cached() -> tuple[int, str]:
    return _glide_filtered_flops()


def agiqa3k_generators(cost_unit: str = "usd") -> tuple[GeneratorRegistry, str]:
    """Generator registry of the ten AGIQA-3K configurations and a statement of the assumptions.

    Parameters
    ----------
    cost_unit : {"usd", "flops"}, default="usd"
        ``"usd"``: all ten configurations, in the order AttnGAN_normal, glide_normal,
        DALLE2_normal, xl2.2_normal, sd1.5_normal, sd1.5_lowstep, sd1.5_highcorr,
        sd1.5_lowcorr, midjourney_normal, midjourney_lowstep.
        ``"flops"``: only the four Stable Diffusion 1.5 configurations, the only ones whose
        architecture ships with costroute (SDXL beta's was never published).

    Returns
    -------
    registry : GeneratorRegistry
    assumptions : str
        Every assumption behind the costs, with the numbers.

    Raises
    ------
    ValueError
        If ``cost_unit`` is not ``"usd"`` or ``"flops"``.
    """
    unit = _check_unit(cost_unit)
    gpu = DEFAULT_PRICE_MODEL
    flops = _agiqa_flops()
    lines = [
        "AGIQA-3K (arXiv 2306.04717) records no generation settings in its file; the paper describes the "
        "variants qualitatively (lowstep = fewer denoising steps, highcorr/lowcorr = higher/lower "
        "classifier-free guidance). Where a number could not be sourced it is an assumption, stated here.",
        "Stable Diffusion 1.5 (architecture shipped, FLOPs counted with costroute.costs.pipeline_cost at "
        "512x512, CLIP 77 tokens, guidance on = UNet batch 2, VAE decode once):",
    ]
    for name in AGIQA_SD15_SETTINGS:
        total, s = flops[name]
        lines.append(f"- {name}: {s['steps']} steps, guidance scale {s['guidance_scale']:g}: {total:.4g} FLOPs.")
    lines.append(
        "  Assumptions: normal = diffusers defaults (50 steps, scale 7.5); lowstep = 10 steps (the exact count "
        "was not retrievable); highcorr/lowcorr = scale 15 / 3.75 - the scale does not change compute as long "
        "as guidance stays on (scale > 1), so all three 50-step variants cost the same."
    )
    if unit == "flops":
        specs = [
            GeneratorSpec(name, float(flops[name][0]), cost_unit="flops", **flops[name][1])
            for name in AGIQA_SD15_SETTINGS
        ]
        lines.append(
            "Only these four configurations have a FLOPs cost: AttnGAN, GLIDE, SDXL beta, DALL-E 2 and Midjourney "
            "have no shipped architecture."
        )
        return GeneratorRegistry(specs), "\n".join(lines) + "\n"

    glide_flops, glide_detail = _glide_cached()
    xl_flops, xl_settings = flops["xl2.2_normal"]
    usd = {
        "AttnGAN_normal": gpu.usd_per_image(ATTNGAN_FLOPS_ESTIMATE),
        "glide_normal": gpu.usd_per_image(glide_flops),
        "DALLE2_normal": DALLE2_USD,
        "xl2.2_normal": gpu.usd_per_image(xl_flops),
        "midjourney_normal": MIDJOURNEY_USD,
        "midjourney_lowstep": MIDJOURNEY_USD * MIDJOURNEY_LOWSTEP_FRACTION,
    }
    for name in AGIQA_SD15_SETTINGS:
        usd[name] = gpu.usd_per_image(flops[name][0])
    settings = {
        "AttnGAN_normal": {"model": "AttnGAN", "flops_estimate": ATTNGAN_FLOPS_ESTIMATE},
        "glide_normal": {
            "model": "GLIDE (filtered)",
            "height": 256,
            "width": 256,
            "steps": (100, 27),
            "guidance": True,
            "guidance_scale": 3.0,
            "flops": glide_flops,
        },
        "DALLE2_normal": {"model": "dall-e-2", "height": 1024, "width": 1024, "source": "OpenAI API list price"},
        "xl2.2_normal": dict(xl_settings, flops=xl_flops),
        "midjourney_normal": {"model": "Midjourney v5", "quality": 1},
        "midjourney_lowstep": {"model": "Midjourney v5", "quality": MIDJOURNEY_LOWSTEP_FRACTION},
    }
    for name in AGIQA_SD15_SETTINGS:
        settings[name] = dict(flops[name][1], flops=flops[name][0])
    specs = [GeneratorSpec(name, usd[name], cost_unit="usd", **settings[name]) for name in _AGIQA_ORDER]
    lines += [
        f"- xl2.2_normal (SDXL beta v2-2-2, architecture never published): assumed SDXL 1.0 architecture at "
        f"512x512 (the beta API's default size), 50 steps, guidance: {xl_flops:.4g} FLOPs.",
        f"- glide_normal: GLIDE (filtered), the public openai/glide-text2im release, sampled as its reference "
        f"notebook does (64 px base 100 steps with guidance scale 3, 256 px upsampler 27 steps without). FLOPs "
        f"counted on architecture-equivalent diffusers/transformers models built from GLIDE's published "
        f"hyper-parameters (an estimate, not GLIDE's own code): {glide_detail}; total {glide_flops:.4g} FLOPs.",
        f"- AttnGAN_normal: not counted; a placeholder of {ATTNGAN_FLOPS_ESTIMATE:.0e} FLOPs (one forward of a "
        "small convolutional GAN generator, order of magnitude only) priced on the GPU model - it is by far the "
        "cheapest configuration under any reasonable count.",
        f"- DALLE2_normal: OpenAI API list price in 2023, 1024x1024: USD {DALLE2_USD:.3f} per image (assumed "
        "size; 512x512 was USD 0.018).",
        f"- midjourney_normal: Midjourney Basic plan USD {MIDJOURNEY_PLAN_USD_PER_MONTH:g}/month for 3.3 h fast GPU "
        f"time, ~{MIDJOURNEY_GENERATIONS_PER_MONTH} generations: USD {MIDJOURNEY_USD:.3f} per image.",
        f"- midjourney_lowstep: assumed Midjourney's --q .5 (half the GPU time of the default): "
        f"USD {MIDJOURNEY_USD * MIDJOURNEY_LOWSTEP_FRACTION:.3f} per image.",
        "- Open models are converted from FLOPs with the GPU price model.",
        _price_text(gpu),
    ]
    for spec in specs:
        lines.append(f"  {spec.name}: {_fmt(spec.cost, 'usd')} per image.")
    return GeneratorRegistry(specs), "\n".join(lines) + "\n"
