"""GPU check of costroute's generators: does counted FLOPs predict wall time, and is seeding deterministic on CUDA?

Runs offline on a CUDA machine: the real architectures (SD 1.5, SD 2.1, SDXL, LCM-SDXL, and
optionally PixArt-alpha and DeepFloyd IF) are built from the configs shipped with costroute
(``costroute/configs``) with *random* weights in float16, put into costroute's pipeline cache
under the keys the presets load from, and driven through the presets' own
``generate_images`` (so the scheduler, the per-image CPU generators and the call arguments
are the ones users get). Random weights compute exactly what trained ones do, so the timings
are real; the images are not meaningful.

For every preset whose architecture is built it measures the wall time per image at batch
size 1 and at ``--batch``, and relates it to the preset's counted FLOPs (seconds per TFLOP,
achieved TFLOP/s, correlation and a linear fit across presets). Then it checks determinism on
CUDA: the same seeds twice, a prompt alone versus inside a batch (through
``RoutingPlan.generate`` with batch sizes 1 and ``--batch``), and CUDA versus CPU
``torch.Generator`` streams.

Writes a JSON report (``--out``, default ``benchmarks/results/gpu_check.json``) and prints a
table. Without CUDA it says so and exits 0 (``--smoke`` runs the same code on the CPU with
shrunken architectures, to check the script itself). It needs torch, diffusers, transformers
and numpy, no network and no hub. It stops starting new measurements after
``--max-seconds`` (default 420 s) so that one run stays under 8 minutes.

Run::

    python benchmarks/gpu_check.py --out benchmarks/results/gpu_check.json

On a machine whose Python lacks diffusers (the lent GPU image has torch and transformers but
not diffusers), carry its wheel: ``pip download --no-deps -d .whl diffusers==0.42.1
importlib_metadata`` here, then there ``pip install --no-index --no-deps --target /tmp/site
.whl/*.whl && PYTHONPATH=/tmp/site python3 benchmarks/gpu_check.py``. One full run took 241 s
on an NVIDIA H200 (``benchmarks/results/gpu_check.json``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir)))

PROMPTS = [
    "a photograph of an astronaut riding a horse",
    "three red kites left of two tall trees at dusk",
    "a white wall",
    "an oil painting of a harbour in the rain, boats with yellow sails",
    "a bowl of ramen on a wooden table, top view",
    "a cat wearing a tiny wizard hat, studio lighting",
    "a crowded park at dusk with a red kite",
    "a close-up of a dew drop on a leaf",
]

# preset -> architecture built for it (None: not built in this check)
ARCH_OF = {
    "sdxl-turbo-1": "sdxl",
    "sdxl-turbo-4": "sdxl",
    "lcm-sdxl-4": "sdxl-lcm",
    "sd15-25": "sd15",
    "sd15-50": "sd15",
    "sd21-50": "sd21",
    "sdxl-base-20": "sdxl",
    "sdxl-base-50": "sdxl",
    "sdxl-base-100": "sdxl",
    "pixart-alpha-20": "pixart_alpha",
    "deepfloyd-if": "deepfloyd_if",
}
HEAVY = ("pixart-alpha-20", "deepfloyd-if")  # need a T5-XXL encoder (4.8B parameters)


# ------------------------------------------------------------------------------ building
def _shrink(config: dict, component: str) -> dict:
    """Same structure, a fraction of the width and depth (``--smoke`` on a CPU)."""
    cfg = copy.deepcopy(config)
    if component.startswith("unet"):
        n = len(cfg["block_out_channels"])
        cfg["block_out_channels"] = [32] * n
        if isinstance(cfg.get("attention_head_dim"), list) or cfg.get("addition_embed_type") == "text_time":
            cfg["attention_head_dim"] = [2] * n
        elif cfg.get("encoder_hid_dim") is not None:  # DeepFloyd IF: attention_head_dim is the head size
            cfg["attention_head_dim"] = 8
        else:
            cfg["attention_head_dim"] = 2
        if cfg.get("transformer_layers_per_block") is not None:
            cfg["transformer_layers_per_block"] = 1
        cfg["layers_per_block"] = 1
        cfg["norm_num_groups"] = 8
        if cfg.get("addition_embed_type_num_heads"):
            cfg["addition_embed_type_num_heads"] = 2
    elif component == "vae":
        cfg["block_out_channels"] = [32] * len(cfg["block_out_channels"])
        cfg["layers_per_block"] = 1
        cfg["norm_num_groups"] = 8
    elif component == "transformer":
        cfg["num_layers"] = 1
    elif component.startswith("text_encoder"):
        if "num_hidden_layers" in cfg:
            cfg["num_hidden_layers"] = 1
            cfg["intermediate_size"] = 64
        else:  # T5
            cfg.update(num_layers=1, d_ff=64, num_heads=2, d_kv=8)
    return cfg


class Builder:
    """Builds the shipped architectures with random weights on the target device."""

    def __init__(self, device: str, dtype, smoke: bool):
        self.device, self.dtype, self.smoke = device, dtype, smoke
        self.seconds: dict[str, float] = {}
        self._t5 = None

    def config(self, arch: str, component: str) -> dict:
        from costroute.costs import load_config

        cfg = load_config(arch, component)
        return _shrink(cfg, component) if self.smoke else cfg

    def module(self, build):
        import torch

        torch.manual_seed(0)
        with torch.device(self.device):
            model = build()
        return model.to(self.dtype).eval()

    def tokenizer(self, max_length: int = 77):
        from transformers import CLIPTokenizer

        from costroute.generators._tiny import _tiny_vocab

        # a character vocabulary: token ids are small, every id is valid for the real encoders
        return CLIPTokenizer(vocab=_tiny_vocab(), merges=[], model_max_length=max_length)

    def clip(self, arch: str, component: str, projection: bool = False):
        from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

        cfg = {k: v for k, v in self.config(arch, component).items() if not k.startswith("_")}
        cls = CLIPTextModelWithProjection if projection else CLIPTextModel
        return self.module(lambda: cls(CLIPTextConfig(**cfg)))

    def t5(self):
        if self._t5 is None:  # T5 v1.1 XXL encoder, shared by PixArt-alpha and DeepFloyd IF
            from transformers import T5Config, T5EncoderModel

            cfg = {k: v for k, v in self.config("deepfloyd_if", "text_encoder").items() if not k.startswith("_")}
            self._t5 = self.module(lambda: T5EncoderModel(T5Config(**cfg)))
        return self._t5

    def build(self, name: str):
        start = time.perf_counter()
        pipe = getattr(self, "_" + name.replace("-", "_"))()
        self.seconds[name] = time.perf_counter() - start
        return pipe

    def _unet(self, arch: str, component: str = "unet", **changes):
        from diffusers import UNet2DConditionModel

        cfg = {**self.config(arch, component), **changes}
        return self.module(lambda: UNet2DConditionModel.from_config(cfg))

    def _vae(self, arch: str):
        from diffusers import AutoencoderKL

        cfg = self.config(arch, "vae")
        return self.module(lambda: AutoencoderKL.from_config(cfg))

    def _sd(self, arch: str, scheduler):
        from diffusers import StableDiffusionPipeline

        return StableDiffusionPipeline(
            vae=self._vae(arch),
            text_encoder=self.clip(arch, "text_encoder"),
            tokenizer=self.tokenizer(),
            unet=self._unet(arch),
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )

    def _sd15(self):
        from diffusers import PNDMScheduler

        return self._sd(
            "sd15",
            PNDMScheduler(
                beta_start=0.00085,
                beta_end=0.012,
                beta_schedule="scaled_linear",
                skip_prk_steps=True,
                steps_offset=1,
                set_alpha_to_one=False,
            ),
        )

    def _sd21(self):
        from diffusers import DDIMScheduler

        return self._sd(
            "sd21",
            DDIMScheduler(
                beta_start=0.00085,
                beta_end=0.012,
                beta_schedule="scaled_linear",
                clip_sample=False,
                set_alpha_to_one=False,
                steps_offset=1,
                prediction_type="v_prediction",
            ),
        )

    def _sdxl_pipeline(self, unet):
        from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

        return StableDiffusionXLPipeline(
            vae=self._vae("sdxl"),
            text_encoder=self.clip("sdxl", "text_encoder"),
            text_encoder_2=self.clip("sdxl", "text_encoder_2", projection=True),
            tokenizer=self.tokenizer(),
            tokenizer_2=self.tokenizer(),
            unet=unet,
            scheduler=EulerDiscreteScheduler(
                beta_start=0.00085,
                beta_end=0.012,
                beta_schedule="scaled_linear",
                timestep_spacing="leading",
                steps_offset=1,
            ),
        )

    def _sdxl(self):
        return self._sdxl_pipeline(self._unet("sdxl"))

    def _sdxl_lcm(self):
        # latent-consistency/lcm-sdxl: the SDXL UNet plus a guidance embedding (time_cond_proj_dim 256)
        return self._sdxl_pipeline(self._unet("sdxl", time_cond_proj_dim=256))

    def _pixart_alpha(self):
        from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline, PixArtTransformer2DModel

        cfg = self.config("pixart_alpha", "transformer")
        transformer = self.module(lambda: PixArtTransformer2DModel.from_config(cfg))
        return PixArtAlphaPipeline(
            tokenizer=self.tokenizer(120),
            text_encoder=self.t5(),
            vae=self._vae("pixart_alpha"),
            transformer=transformer,
            scheduler=DPMSolverMultistepScheduler(),
        )

    def _deepfloyd_if(self):
        from diffusers import DDPMScheduler, IFPipeline, IFSuperResolutionPipeline

        def scheduler():
            return DDPMScheduler(
                beta_schedule="squaredcos_cap_v2",
                variance_type="learned_range",
                thresholding=True,
                dynamic_thresholding_ratio=0.95,
                sample_max_value=1.0,
            )

        none = {
            "safety_checker": None,
            "feature_extractor": None,
            "watermarker": None,
            "requires_safety_checker": False,
        }
        stage_1 = IFPipeline(
            tokenizer=self.tokenizer(),
            text_encoder=self.t5(),
            unet=self._unet("deepfloyd_if", "unet_stage1"),
            scheduler=scheduler(),
            **none,
        )
        stage_2 = IFSuperResolutionPipeline(
            tokenizer=self.tokenizer(),
            text_encoder=None,
            unet=self._unet("deepfloyd_if", "unet_stage2"),
            scheduler=scheduler(),
            image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
            **none,
        )
        return stage_1, stage_2


def inject(spec, pipe) -> None:
    """Put a built pipeline into costroute's cache under the key ``spec`` loads from."""
    from costroute.generators import DeepFloydIFGenerator, pipeline_cache

    if isinstance(spec, DeepFloydIFGenerator):
        for key, stage in zip(spec._load_keys(), pipe):
            pipeline_cache.get(key, lambda stage=stage: stage)
    else:
        pipeline_cache.get(spec._load_key(), lambda: pipe)


# ------------------------------------------------------------------------------ measuring
def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(spec, prompts, seeds) -> tuple[float, list]:
    sync()
    start = time.perf_counter()
    images = spec.generate_images(prompts, seeds)
    sync()
    return time.perf_counter() - start, images


def image_stats(images) -> dict:
    arrays = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in images])
    return {"mean": float(arrays.mean()), "std": float(arrays.std()), "size": list(images[0].size)}


def fit(flops: np.ndarray, seconds: np.ndarray) -> dict:
    """How well counted FLOPs predict seconds per image across presets."""
    if len(flops) < 3:
        return {"n_presets": int(len(flops))}
    tflops = flops / 1e12
    slope, intercept = np.polyfit(tflops, seconds, 1)
    predicted = slope * tflops + intercept
    r2 = 1 - ((seconds - predicted) ** 2).sum() / ((seconds - seconds.mean()) ** 2).sum()
    ranks = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    spt = seconds / tflops
    return {
        "n_presets": int(len(flops)),
        "pearson_r": float(np.corrcoef(tflops, seconds)[0, 1]),
        "spearman_rho": float(np.corrcoef(ranks(tflops), ranks(seconds))[0, 1]),
        "loglog_slope": float(np.polyfit(np.log(tflops), np.log(seconds), 1)[0]),
        "linear_fit_seconds_per_tflop": float(slope),
        "linear_fit_intercept_seconds": float(intercept),
        "linear_fit_r2": float(r2),
        "seconds_per_tflop_min": float(spt.min()),
        "seconds_per_tflop_max": float(spt.max()),
        "seconds_per_tflop_max_over_min": float(spt.max() / spt.min()),
    }


def determinism(spec, batch: int) -> dict:
    """Same seeds twice; alone versus in a batch (directly and through RoutingPlan.generate); CUDA streams."""
    import torch

    from costroute import GeneratorRegistry, RoutingPlan

    out: dict = {"generator": spec.name, "steps": spec.steps}
    prompts = PROMPTS[:batch]
    seeds = list(range(100, 100 + batch))
    as_arrays = lambda images: np.stack([np.asarray(im, dtype=np.int16) for im in images])  # noqa: E731
    first = as_arrays(spec.generate_images(prompts, seeds))
    second = as_arrays(spec.generate_images(prompts, seeds))
    alone = as_arrays([spec.generate_images([p], [s])[0] for p, s in zip(prompts, seeds)])
    out["image_std"] = float(first.std())
    out["repeat_max_abs_pixel_diff"] = int(np.abs(first - second).max())
    diff = np.abs(first - alone)
    out["batch_vs_alone_max_abs_pixel_diff"] = int(diff.max())
    out["batch_vs_alone_share_of_pixels_differing"] = float((diff > 0).mean())
    plan = RoutingPlan(prompts, [0] * batch, GeneratorRegistry([spec]), np.zeros((batch, 1)), 0.0)
    one = as_arrays(plan.generate(seed=7, batch_size=1, progress=False).images)
    many = as_arrays(plan.generate(seed=7, batch_size=batch, progress=False).images)
    out[f"plan_generate_bs1_vs_bs{batch}_max_abs_pixel_diff"] = int(np.abs(one - many).max())
    out[f"plan_generate_bs1_vs_bs{batch}_share_of_pixels_differing"] = float((one != many).mean())
    if torch.cuda.is_available():
        a = torch.randn(4, 64, 64, device="cuda", generator=torch.Generator("cuda").manual_seed(123))
        b = torch.randn(4, 64, 64, device="cuda", generator=torch.Generator("cuda").manual_seed(123))
        c = torch.randn(4, 64, 64, generator=torch.Generator("cpu").manual_seed(123))
        out["cuda_generator_same_seed_identical"] = bool(torch.equal(a, b))
        out["cuda_vs_cpu_generator_same_stream"] = bool(torch.equal(a.cpu(), c))
    return out


def load_check() -> dict:
    """costroute's own load path: a saved (tiny) pipeline folder, dtype and device "auto"."""
    import tempfile

    import torch

    from costroute.generators import DiffusersGenerator, build_tiny_pipeline, pipeline_cache

    with tempfile.TemporaryDirectory() as folder:
        path = build_tiny_pipeline(os.path.join(folder, "tiny-sdxl"), kind="sdxl")
        spec = DiffusersGenerator("tiny-sdxl", path, steps=2, guidance_scale=5.0)
        loads = pipeline_cache.loads
        pipe = spec.load()
        images = spec.generate_images(PROMPTS[:2], [1, 2])
        again = spec.clone(name="tiny-sdxl-3", steps=3, scheduler="euler_a").generate_images(PROMPTS[:1], [1])
        out = {
            "load_key": [str(k) for k in spec._load_key()],
            "unet_dtype": str(pipe.unet.dtype),
            "unet_device": str(pipe.unet.device),
            "loads_for_two_specs": pipeline_cache.loads - loads,
            "image_sizes": [list(im.size) for im in images + again],
            "image_std": float(np.asarray(images[0], dtype=np.float32).std()),
            "cuda": torch.cuda.is_available(),
        }
        spec.unload()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "gpu_check.json"))
    parser.add_argument("--batch", type=int, default=4, help="the larger batch size timed")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per batch size (the minimum is kept)")
    parser.add_argument("--max-seconds", type=float, default=420.0, help="start no new measurement after this")
    parser.add_argument("--presets", default=None, help="comma-separated presets (default: all that are built)")
    parser.add_argument("--no-heavy", action="store_true", help="skip PixArt-alpha and DeepFloyd IF (T5-XXL)")
    parser.add_argument("--smoke", action="store_true", help="CPU, shrunken architectures, 64 px, <= 2 steps")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()

    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print(
            "CUDA is not available: nothing to check here. Run this on a CUDA machine "
            "(python benchmarks/gpu_check.py); --smoke checks the script on a CPU."
        )
        return 0
    import diffusers
    import transformers
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from costroute.generators import pipeline_cache, presets

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    device = "cpu" if args.smoke else "cuda"
    dtype_name = "float32" if args.smoke else "float16"
    dtype = getattr(torch, dtype_name)
    pipeline_cache.max_loaded = 16
    report: dict = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or "cpu",
        "smoke": args.smoke,
        "dtype": dtype_name,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "diffusers": diffusers.__version__,
            "transformers": transformers.__version__,
        },
        "batch": args.batch,
        "repeats": args.repeats,
        "notes": "random weights built from costroute/configs; time per image = min over repeats of the "
        "batch's wall time / batch size; FLOPs = the preset's counted cost (costroute.costs)",
        "presets": [],
        "skipped": {},
    }
    names = args.presets.split(",") if args.presets else presets.names()
    if args.no_heavy:
        names = [n for n in names if n not in HEAVY]
    names = sorted(names, key=lambda n: n in HEAVY)  # heavy ones last
    builder = Builder(device, dtype, args.smoke)
    built: dict = {}
    try:
        for name in names:
            arch = ARCH_OF.get(name)
            if arch is None:
                report["skipped"][name] = "no architecture to build"
                continue
            if time.perf_counter() - t0 > args.max_seconds:
                report["skipped"][name] = f"time budget of {args.max_seconds:.0f} s reached"
                continue
            spec = presets.get(name, device=device, dtype=dtype_name)
            if args.smoke:
                steps = spec.settings["steps"]
                small = tuple(min(s, 2) for s in steps) if isinstance(steps, tuple) else min(steps, 2)
                spec = (
                    spec.clone(steps=small)
                    if isinstance(steps, tuple)
                    else spec.clone(steps=small, height=64, width=64)
                )
            row: dict = {
                "preset": name,
                "arch": arch,
                "steps": spec.settings["steps"],
                "guidance_scale": spec.settings["guidance_scale"],
            }
            try:
                if arch not in built:
                    built[arch] = builder.build(arch)
                    row["build_seconds"] = builder.seconds[arch]
                inject(spec, built[arch])
                breakdown = spec.cost_breakdown()
                row.update(
                    flops=spec.cost, resolution=[breakdown.width, breakdown.height], guidance_batch=breakdown.guidance
                )
                # warm-up (kernels, allocator, autotuning) with 2 steps: PixArt treats 1 step specially
                warm = spec.clone(steps=(2, 2) if isinstance(spec.settings["steps"], tuple) else 2)
                timed(warm, PROMPTS[:1], [0])
                for bs in sorted({1, args.batch}):
                    runs = [timed(spec, PROMPTS[:bs], list(range(bs))) for _ in range(args.repeats)]
                    per_image = min(t for t, _ in runs) / bs
                    row[f"seconds_per_image_bs{bs}"] = per_image
                    row[f"seconds_per_tflop_bs{bs}"] = per_image / (spec.cost / 1e12)
                    row[f"achieved_tflops_per_second_bs{bs}"] = spec.cost / 1e12 / per_image
                    row[f"image_stats_bs{bs}"] = image_stats(runs[-1][1])
                if device == "cuda":
                    row["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
            except Exception as exc:  # one preset failing must not lose the others
                row["error"] = f"{type(exc).__name__}: {exc}"
                row["traceback"] = traceback.format_exc(limit=6)
            report["presets"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "traceback"}, default=str), flush=True)

        ok = [r for r in report["presets"] if "error" not in r and "seconds_per_image_bs1" in r]
        flops = np.array([r["flops"] for r in ok], dtype=float)
        report["flops_predict_time"] = {
            f"bs{bs}": fit(flops, np.array([r[f"seconds_per_image_bs{bs}"] for r in ok]))
            for bs in sorted({1, args.batch})
            if all(f"seconds_per_image_bs{bs}" in r for r in ok)
        }
        if "sd15" in built:
            spec = presets.get("sd15-25", device=device, dtype=dtype_name).clone(name="sd15-4", steps=4)
            if args.smoke:
                spec = spec.clone(height=64, width=64)
            try:
                report["determinism"] = determinism(spec, args.batch)
            except Exception as exc:
                report["determinism"] = {
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=6),
                }
        try:
            report["load_check"] = load_check()
        except Exception as exc:
            report["load_check"] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)}
        report["build_seconds"] = builder.seconds
    finally:
        report["elapsed_seconds"] = time.perf_counter() - t0
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, default=str)

    print(
        f"\n{'preset':<16} {'TFLOPs':>9} {'s/img bs1':>10} {f's/img bs{args.batch}':>10} "
        f"{'s/TFLOP bs1':>12} {'TFLOP/s bs1':>12}"
    )
    for r in report["presets"]:
        if "error" in r:
            print(f"{r['preset']:<16} ERROR {r['error'][:90]}")
            continue
        print(
            f"{r['preset']:<16} {r['flops'] / 1e12:9.2f} {r.get('seconds_per_image_bs1', float('nan')):10.4f} "
            f"{r.get(f'seconds_per_image_bs{args.batch}', float('nan')):10.4f} "
            f"{r.get('seconds_per_tflop_bs1', float('nan')):12.5f} "
            f"{r.get('achieved_tflops_per_second_bs1', float('nan')):12.1f}"
        )
    for key, value in report.get("flops_predict_time", {}).items():
        print(f"FLOPs vs time ({key}): {json.dumps(value)}")
    print("determinism:", json.dumps(report.get("determinism"), default=str))
    print("load check:", json.dumps(report.get("load_check"), default=str))
    if report["skipped"]:
        print("skipped:", json.dumps(report["skipped"]))
    print(f"report: {os.path.abspath(args.out)}  ({report['elapsed_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
