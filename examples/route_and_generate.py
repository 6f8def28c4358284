"""Route GenAI-Bench prompts to the open generators by expected quality and cost, then make the images.

1. Fit a :class:`~costroute.CostAwareRouter` on GenAI-Bench's human ratings of its four open
   generators (costs in FLOPs per image).
2. Give every generator a backend: the preset with the settings the cost table assumes
   (``SDXL_Base`` -> SDXL base 1.0 at 50 steps, ``SDXL_Turbo`` -> SDXL-Turbo 1 step 512 px,
   ``SDXL_2_1`` -> Stable Diffusion 2.1 at 50 steps, ``DeepFloyd_I_XL_v1`` -> the IF-I-XL + IF-II-L
   cascade); each preset's FLOPs equal the dataset's cost for that generator.
3. Route a handful of held-out prompts and generate them, then save every image and a contact
   sheet labelled with the generator, its cost and the predicted quality into a folder
   (``--out``; by default a fresh temporary folder, whose path is printed).

If some prompt cannot be made, or the run is interrupted with Ctrl-C, the images already made
are still saved (``GenerationError.result`` / ``KeyboardInterrupt.result``).

With ``--tiny`` the four backends are tiny random pipelines built offline (same names and
costs, at most 4 steps, 64 px), so the script runs on a CPU without a model hub in about a
minute; the images are noise, the routing and the bookkeeping are real. Without it the real
weights are loaded (a GPU and the hub, or a warm Hugging Face cache, are needed).

Run::

    python examples/route_and_generate.py --tiny --out /tmp/routed
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
import time

import numpy as np

from costroute import CostAwareRouter, GeneratorRegistry
from costroute.datasets import load_genai_bench
from costroute.execution import GenerationError
from costroute.generators import DiffusersGenerator, build_tiny_pipeline, presets

#: GenAI-Bench generator -> preset with the settings of the dataset's cost table.
PRESET_OF = {
    "DeepFloyd_I_XL_v1": "deepfloyd-if",
    "SDXL_Base": "sdxl-base-50",
    "SDXL_Turbo": "sdxl-turbo-1",
    "SDXL_2_1": "sd21-50",
}


def real_backends(generators: GeneratorRegistry, dtype: str, device: str) -> GeneratorRegistry:
    """The dataset's generators as presets with the same names (and, checked, the same costs)."""
    specs = []
    for spec in generators:
        backend = presets.get(PRESET_OF[spec.name], name=spec.name, dtype=dtype, device=device)
        if not np.isclose(backend.cost, spec.cost, rtol=1e-9):
            raise RuntimeError(f"{spec.name}: preset costs {backend.cost:.4g} FLOPs, the dataset {spec.cost:.4g}")
        specs.append(backend)
    return GeneratorRegistry(specs)


def tiny_backends(generators: GeneratorRegistry, folder: str) -> GeneratorRegistry:
    """Tiny random pipelines standing in for the real ones: same names and costs, <= 4 steps."""
    sd = build_tiny_pipeline(os.path.join(folder, "tiny-sd"), kind="sd", seed=0)
    sdxl = build_tiny_pipeline(os.path.join(folder, "tiny-sdxl"), kind="sdxl", seed=1)
    specs = []
    for spec in generators:
        preset = presets.get(PRESET_OF[spec.name])
        steps = preset.settings["steps"]
        steps = min(steps if isinstance(steps, int) else steps[0], 4)
        scale = preset.settings["guidance_scale"]
        scale = scale if isinstance(scale, float) else scale[0]
        specs.append(
            DiffusersGenerator(
                spec.name,
                sdxl if spec.name in ("SDXL_Base", "SDXL_Turbo") else sd,
                steps=steps,
                guidance_scale=scale,
                cost=spec.cost,
                device="cpu",
                dtype="float32",
            )
        )
    return GeneratorRegistry(specs)


def contact_sheet(result, plan, path: str, tile: int = 256, columns: int = 3) -> None:
    """Save the images in a grid, each labelled with generator, cost and predicted quality."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    caption = 92
    n = len(result)
    rows = -(-n // columns)
    sheet = Image.new("RGB", (columns * tile, rows * (tile + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    frame = result.to_frame()
    for i, image in enumerate(result):
        x, y = (i % columns) * tile, (i // columns) * (tile + caption)
        if image is not None:
            sheet.paste(image.convert("RGB").resize((tile, tile)), (x, y))
        row = frame.iloc[i]
        lines = [
            f"#{i} {row['generator'] or row['status']}" + (" (fallback)" if row["fell_back"] else ""),
            f"cost {row['cost'] / 1e12:.3g} TFLOPs   q-hat {plan.expected_quality[i]:.2f}",
            *textwrap.wrap(str(row["prompt"]), width=34)[:3],
        ]
        draw.multiline_text((x + 4, y + tile + 3), "\n".join(lines), fill="black", font=font, spacing=2)
    sheet.save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random pipelines, offline, CPU (about a minute)")
    parser.add_argument("--n-prompts", type=int, default=9, help="held-out prompts to route and generate")
    parser.add_argument("--cost-penalty", type=float, default=0.1, help="lambda of the routing rule")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--dtype", default="auto", help="real pipelines: auto = float16 on CUDA, else float32")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--out",
        default=None,
        help="folder for the images and contact_sheet.png (created); default: a fresh temporary folder",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = os.path.abspath(args.out) if args.out else tempfile.mkdtemp(prefix="costroute-route-and-generate-")
    os.makedirs(out, exist_ok=True)

    data = load_genai_bench(cost_unit="flops")
    print(f"GenAI-Bench: {len(data.prompts)} prompts x {len(data.generators)} open generators")
    for spec in data.generators:
        print(f"  {spec.name:<18} {spec.cost / 1e12:9.2f} TFLOPs per image")

    rng = np.random.default_rng(args.seed)
    held_out = rng.choice(len(data.prompts), size=args.n_prompts, replace=False)
    train = np.setdiff1d(np.arange(len(data.prompts)), held_out)
    prompts = [data.prompts[i] for i in held_out]

    with tempfile.TemporaryDirectory() as folder:
        if args.tiny:
            from diffusers.utils import logging as diffusers_logging
            from transformers.utils import logging as transformers_logging

            # the tiny tokenizer truncates long prompts and says so at length: keep the output readable
            transformers_logging.set_verbosity_error()
            diffusers_logging.set_verbosity_error()
            import torch

            torch.set_num_threads(1)  # tiny models gain nothing from threads; shared CPUs lose a lot
            backends = tiny_backends(data.generators, folder)
        else:
            backends = real_backends(data.generators, args.dtype, args.device)
        router = CostAwareRouter(backends, features="minilm", quality_model="knn", cost_penalty=args.cost_penalty)
        router.fit([data.prompts[i] for i in train], data.quality.iloc[train])
        plan = router.route(prompts)
        print(f"\n{plan}\n{plan.summary().to_string(float_format=lambda v: f'{v:.4g}')}\n")

        interrupted = None
        try:
            result = plan.generate(seed=args.seed, batch_size=args.batch_size, progress=True)
        except GenerationError as exc:  # some prompt failed on every generator: keep the others
            print(f"\n{exc}")
            result = exc.result
        except KeyboardInterrupt as exc:  # Ctrl-C: save what was made, then stop
            result, interrupted = exc.result, exc
    saved = result.save(out, missing="skip")
    contact_sheet(result, plan, os.path.join(out, "contact_sheet.png"))
    print(f"{len(saved)} images and contact_sheet.png in {out}")
    if interrupted is not None:
        raise interrupted
    frame = result.to_frame()
    frame["expected_quality"] = plan.expected_quality
    frame["prompt"] = frame["prompt"].str.slice(0, 48)
    print(
        frame[["prompt", "generator", "status", "cost", "expected_quality", "seconds", "batch_size"]].to_string(
            float_format=lambda v: f"{v:.4g}"
        )
    )
    if result.fallbacks:
        print("fallbacks:", *result.fallbacks, sep="\n  ")
    best = data.generators.costs.max()
    made = len(result) - len(result.missing)
    if made:
        print(
            f"\nrouted cost {result.total_cost / made / 1e12:.3g} TFLOPs per image "
            f"({result.total_cost / (best * made):.1%} of always using the most expensive generator)"
        )
    print(f"output folder: {out}  ({time.perf_counter() - start:.1f} s in all)")


if __name__ == "__main__":
    main()
