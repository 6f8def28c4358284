"""Route, generate, verify with a scorer, escalate when it pays: a CascadeRouter end to end.

1. A pool of three generators, cheap / mid / expensive: the presets ``sdxl-turbo-1`` (SDXL-Turbo,
   1 step), ``sd15-25`` (Stable Diffusion 1.5, 25 steps) and ``sdxl-base-50`` (SDXL base,
   50 steps), with their counted costs in FLOPs per image, and a CLIPScore scorer
   (``openai/clip-vit-large-patch14``) whose cost per image is counted the same way.
2. Training data made on the spot: every generator draws an image for each of a few dozen
   PartiPrompts (seeded with :func:`costroute.execution.candidate_seed` from ``--seed`` + 1,
   so that no held-out image shares its noise with a training image), the scorer scores every
   image, and a *judge* rates every image as the "true quality" the router learns.
3. A :class:`~costroute.CostAwareRouter` (prompt-complexity features; k-nearest neighbours
   with 7 neighbours, since the default ``"knn"`` takes 40, more than this small training set
   holds, and would predict its mean for every prompt) inside a
   :class:`~costroute.CascadeRouter` is fitted on that matrix. The cascade then runs on a few
   held-out prompts (seeded from ``--seed``): generate with the routed generator, score the
   image, try another generator while the expected improvement is worth its cost, return the
   best candidate.
4. Everything goes into a folder (``--out``; by default a fresh temporary folder, whose path is
   printed): every candidate image, ``contact_sheet.png`` (one row per prompt, one tile per
   candidate in the order tried, labelled with generator, score, expected quality and cost, the
   returned one framed in green), ``result.csv`` (``CascadeResult.to_frame()``) and ``costs.csv``
   (what one image of each generator and one scoring cost). The script prints what each
   prompt tried and returned, and the mean cost and judged quality next to the plain
   router's on the same prompts (its image is the cascade's first candidate).

The judge. There are no human ratings of freshly generated images, so a second scorer stands
in for them: without ``--tiny`` it is VQAScore (LLaVA-1.5 7B), which follows human ratings
within a prompt far better than CLIPScore does (see ``docs/scoring.md``). A real study would
rate the training images by people instead, or use a collected dataset.

With ``--tiny`` everything is built offline from configs with random weights: three tiny
diffusers pipelines (1, 2 and 4 steps, 64 px) carry the three presets' real costs, the scorer
is a tiny random CLIP (``build_tiny_clip``) charged the real CLIP ViT-L/14 cost, and the judge
is a second, independent tiny random CLIP (another seed). The mechanics (seeds, batching,
scoring, the escalation decisions, the costs) are real; the images are noise and the scores
and "qualities" mean nothing. It runs on a CPU in well under a minute. Without ``--tiny`` the
real weights are loaded (a GPU and the Hugging Face hub or a warm cache are needed), through
the same code.

Run::

    python examples/verified_generation.py --tiny --out /tmp/verified
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time

import numpy as np
import pandas as pd
from sklearn.neighbors import KNeighborsRegressor

from costroute import CascadeRouter, CostAwareRouter, GeneratorRegistry
from costroute.datasets import DataNotFoundError, load_prompts
from costroute.execution import GenerationError, candidate_seed
from costroute.generators import DiffusersGenerator, build_tiny_pipeline, presets
from costroute.scoring import CLIPScorer, VQAScorer, build_tiny_clip

#: The pool, cheapest first: preset name -> steps of its tiny stand-in.
POOL = {"sdxl-turbo-1": 1, "sd15-25": 2, "sdxl-base-50": 4}

#: Used when the PartiPrompts file is not available (no ``COSTROUTE_DATA``, no data home).
BUILTIN_PROMPTS = [
    "a red bicycle leaning against a brick wall",
    "a cat sleeping on a windowsill in the sun",
    "an astronaut riding a horse on the moon",
    "a bowl of ramen with chopsticks, top view",
    "a lighthouse on a cliff during a storm",
    "three blue cubes stacked on a green sphere",
    "a watercolor painting of a fox in the snow",
    "a street sign that says 'costroute'",
    "a golden retriever wearing sunglasses at the beach",
    "a medieval castle made of glass",
    "two teddy bears playing chess in a library",
    "a close-up photo of a dew drop on a leaf",
    "a robot painting a self-portrait",
    "a city skyline at night reflected in a river",
    "a cup of coffee with latte art shaped like a swan",
    "a hot air balloon over a field of tulips",
    "an owl reading a newspaper",
    "a pixel-art mushroom house",
    "a sailboat in a bottle on a wooden desk",
    "a koala holding a sign that reads 'hello'",
    "a bamboo forest in the fog",
    "a vintage car parked in front of a diner",
    "a dragon made of autumn leaves",
    "a child's drawing of a family under a rainbow",
    "five oranges in a white bowl",
    "a snowman with a carrot nose and a top hat",
    "a penguin on a skateboard",
    "an oil painting of a farmhouse at sunset",
    "a neon sign shaped like a cactus",
    "a stack of pancakes with blueberries and syrup",
    "a giraffe standing next to a blue door",
    "a chessboard where the pieces are fruits",
    "a mountain lake with a wooden canoe",
    "a steampunk owl with brass gears",
    "a plate of sushi arranged like a flower",
    "a black-and-white photo of a train station",
]


def choose_prompts(n: int, seed: int) -> tuple[list[str], str]:
    """``n`` distinct prompts drawn at random from PartiPrompts (or the built-in list)."""
    try:
        prompts, source = list(load_prompts("partiprompts", download=False).prompts), "PartiPrompts"
    except DataNotFoundError:
        prompts, source = BUILTIN_PROMPTS, "the built-in prompt list (PartiPrompts not found)"
    if n > len(prompts):
        raise ValueError(f"--n-train + --n-test = {n} prompts, but {source} holds only {len(prompts)}")
    picked = np.random.default_rng(seed).choice(len(prompts), size=n, replace=False)
    return [prompts[i] for i in picked], source


def tiny_setup(folder: str) -> tuple[GeneratorRegistry, CLIPScorer, CLIPScorer]:
    """Tiny random pipelines with the presets' real costs, a tiny CLIP scorer and a tiny CLIP judge."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    # the tiny tokenizers truncate long prompts and say so at length: keep the output readable
    transformers_logging.set_verbosity_error()
    diffusers_logging.set_verbosity_error()
    import torch

    torch.set_num_threads(1)  # tiny models gain nothing from threads; shared CPUs lose a lot
    sd = build_tiny_pipeline(os.path.join(folder, "tiny-sd"), kind="sd", seed=0)
    sdxl = build_tiny_pipeline(os.path.join(folder, "tiny-sdxl"), kind="sdxl", seed=1)
    specs = []
    for name, steps in POOL.items():
        preset = presets.get(name)
        specs.append(
            DiffusersGenerator(
                name,
                sdxl if name.startswith("sdxl") else sd,
                steps=steps,
                guidance_scale=preset.guidance_scale,
                cost=preset.cost,
                device="cpu",
                dtype="float32",
            )
        )
    clip_cost = CLIPScorer("openai/clip-vit-large-patch14").cost  # counted from the shipped config
    # cosine, not CLIPScore: a random CLIP's cosines straddle 0, and CLIPScore clips them at 0
    scorer = CLIPScorer(
        build_tiny_clip(os.path.join(folder, "tiny-clip"), seed=0),
        output="cosine",
        name="tiny-clip",
        device="cpu",
        dtype="float32",
        cost=clip_cost,
    )
    judge = CLIPScorer(
        build_tiny_clip(os.path.join(folder, "tiny-judge"), seed=1),
        output="cosine",
        name="tiny-judge",
        device="cpu",
        dtype="float32",
    )
    return GeneratorRegistry(specs), scorer, judge


def real_setup(dtype: str, device: str):
    """The presets, CLIPScore with CLIP ViT-L/14, and VQAScore (LLaVA-1.5 7B) as the judge."""
    pool = GeneratorRegistry([presets.get(name, dtype=dtype, device=device) for name in POOL])
    scorer = CLIPScorer("openai/clip-vit-large-patch14", device=device, dtype=dtype)
    judge = VQAScorer(device=device, dtype=dtype)
    return pool, scorer, judge


def training_matrices(
    pool: GeneratorRegistry, scorer, judge, prompts: list[str], seed: int, batch_size: int, progress: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every generator's image of every prompt, scored by ``scorer`` and rated by ``judge``."""
    from tqdm.auto import tqdm

    quality = pd.DataFrame(index=range(len(prompts)), columns=pool.names, dtype=float)
    scores = quality.copy()
    bar = tqdm(
        total=len(prompts) * len(pool), unit="img", desc="training images", file=sys.stderr, disable=not progress
    )
    for spec in pool:
        images = []
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start : start + batch_size]
            seeds = [candidate_seed(seed, start + j, spec.name) for j in range(len(batch))]
            images += spec.generate_images(batch, seeds)
            bar.update(len(batch))
        # scorers batch on their own (their default batch size)
        scores[spec.name] = scorer.score(prompts, images, progress=False)
        quality[spec.name] = judge.score(prompts, images, progress=False)
    bar.close()
    return quality, scores


def contact_sheet(result, costs: dict, expected: np.ndarray, path: str, tile: int = 192, text_width: int = 240) -> None:
    """One row per prompt: its text, then every candidate in the order tried, the returned one framed.

    ``costs``: generator name -> cost of one image; ``expected``: (n, K) expected quality of every
    generator's image given the scores seen (the returned candidate is the tried one with the
    highest).
    """
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    caption, pad, border, header = 70, 8, 6, 44
    columns = max(1, max(len(o) for o in result.order))
    width = max(text_width + columns * (tile + pad) + pad, 720)
    row_height = tile + caption + 2 * pad
    sheet = Image.new("RGB", (width, header + len(result) * row_height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.multiline_text(
        (pad, pad),
        f"Candidates in the order tried (lambda = {result.cost_penalty:.4g}). Green: "
        "returned, the tried image with the highest\nexpected quality E[q] given its "
        "score (not necessarily the highest score).",
        fill="black",
        font=font,
        spacing=3,
    )
    unit = 1e12 if result.cost_unit == "flops" else 1.0
    unit_name = "TFLOPs" if result.cost_unit == "flops" else result.cost_unit
    for i, prompt in enumerate(result.prompts):
        y = header + i * row_height + pad
        draw.line([(0, y - pad), (width, y - pad)], fill="#bbbbbb", width=1)
        lines = [
            f"#{i}",
            *textwrap.wrap(str(prompt), width=28)[:8],
            "",
            f"spent {result.cost[i] / unit:.4g} {unit_name}",
            "(images and scoring)",
            f"returned: {result.returned[i]}",
        ]
        draw.multiline_text((pad, y), "\n".join(lines), fill="black", font=font, spacing=3)
        for step, name in enumerate(result.order[i]):
            x = text_width + step * (tile + pad)
            image = result.candidates[i].get(name)
            if image is None:
                draw.rectangle([x, y, x + tile - 1, y + tile - 1], fill="#dddddd")
                draw.text((x + 8, y + tile // 2 - 8), "no image (failed)", fill="black", font=font)
            else:
                sheet.paste(image.convert("RGB").resize((tile, tile), Image.NEAREST), (x, y))
            returned = name == result.returned[i]
            if returned:
                draw.rectangle([x - 3, y - 3, x + tile + 2, y + tile + 2], outline="#11aa11", width=border)
            k = result.generator_names.index(name)
            score = result.score_matrix[i, k]
            label = [
                f"{step + 1}. {name}" + ("  RETURNED" if returned else ""),
                f"score {'not scored' if np.isnan(score) else f'{score:.4g}'}",
                f"E[q] {expected[i, k]:.4g}",
                f"image cost {costs[name] / unit:.4g} {unit_name}",
            ]
            draw.multiline_text(
                (x, y + tile + 4), "\n".join(label), font=font, spacing=2, fill="#117711" if returned else "black"
            )
    sheet.save(path)


def save_candidates(result, folder: str) -> list[str]:
    """Every candidate image as ``{prompt:02d}_{step}_{generator}[_returned].png``."""
    paths = []
    for i, order in enumerate(result.order):
        for step, name in enumerate(order):
            image = result.candidates[i].get(name)
            if image is None:
                continue
            tag = "_returned" if name == result.returned[i] else ""
            path = os.path.join(folder, f"{i:02d}_{step + 1}_{name}{tag}.png")
            image.save(path)
            paths.append(path)
    return paths


def judged_means(result, judge) -> tuple[float, float] | None:
    """The judge's mean rating of the returned images and of the plain router's (each prompt's first candidate).

    Over the prompts that have both; ``None`` when there are none.
    """
    rows = [
        i
        for i, order in enumerate(result.order)
        if result.returned[i] is not None and order and order[0] in result.candidates[i]
    ]
    if not rows:
        return None
    prompts = [result.prompts[i] for i in rows]
    returned = judge.score(prompts, [result[i] for i in rows], progress=False)
    routed = judge.score(prompts, [result.candidates[i][result.order[i][0]] for i in rows], progress=False)
    return float(np.mean(returned)), float(np.mean(routed))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random models, offline, CPU (well under a minute)")
    parser.add_argument("--n-train", type=int, default=28, help="prompts that every generator draws for training")
    parser.add_argument("--n-test", type=int, default=6, help="held-out prompts the cascade runs on")
    parser.add_argument(
        "--cost-penalty",
        type=float,
        default=None,
        help="lambda, in judge-quality units per unit of normalised cost "
        "(default: 0.01 with --tiny, 0.05 with the real models)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="target mean normalised cost per prompt, scoring included (calibrates lambda)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--dtype", default="auto", help="real models: auto = float16 on CUDA, else float32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.add_argument(
        "--out",
        default=None,
        help="folder for the images, contact_sheet.png and result.csv (created); default: a fresh temporary folder",
    )
    args = parser.parse_args(argv)
    if args.n_train < 10 or args.n_test < 1:
        parser.error(
            f"--n-train must be >= 10 (the router's 7 neighbours within each of 5 folds) and "
            f"--n-test >= 1, got {args.n_train} and {args.n_test}"
        )
    lam = args.cost_penalty if args.cost_penalty is not None else (0.01 if args.tiny else 0.05)
    start = time.perf_counter()
    out = os.path.abspath(args.out) if args.out else tempfile.mkdtemp(prefix="costroute-verified-")
    os.makedirs(out, exist_ok=True)

    prompts, source = choose_prompts(args.n_train + args.n_test, args.seed)
    train, test = prompts[: args.n_train], prompts[args.n_train :]
    print(f"{args.n_train} training and {args.n_test} held-out prompts from {source}")

    with tempfile.TemporaryDirectory() as folder:
        pool, scorer, judge = tiny_setup(folder) if args.tiny else real_setup(args.dtype, args.device)
        for spec in pool:
            print(f"  {spec.name:<14} {spec.cost / 1e12:9.2f} TFLOPs per image, {spec.steps} step(s)")
        print(f"  scorer {scorer.name}: {scorer.cost / 1e12:.3f} TFLOPs per image; judge {judge.name}")
        if args.tiny:
            print(
                "  tiny random models: the mechanics are real, the images are noise and the scores and "
                "judged 'qualities' mean nothing"
            )

        # training matrices; their images are seeded apart from the held-out ones
        quality, scores = training_matrices(pool, scorer, judge, train, args.seed + 1, args.batch_size, args.progress)
        router = CostAwareRouter(
            pool, features="complexity", quality_model=KNeighborsRegressor(n_neighbors=7), progress=False
        )
        cascade = CascadeRouter(router, scorer=scorer, cost_penalty=lam, budget=args.budget, random_state=args.seed)
        cascade.fit(train, quality, scores=scores)

        interrupted = None
        try:
            result = cascade.generate(test, seed=args.seed, batch_size=args.batch_size, progress=args.progress)
        except GenerationError as exc:  # some prompt failed: keep the others
            print(f"\n{exc}")
            result = exc.result
        except KeyboardInterrupt as exc:  # Ctrl-C: save what was made, then stop
            result, interrupted = exc.result, exc
        plan = cascade.router_.route(test, cost_penalty=result.cost_penalty)
        predicted = cascade.router_.predict_quality(test)
        seen = ~np.isnan(result.score_matrix)
        expected, _ = cascade.posterior_.condition(predicted, seen, np.where(seen, result.score_matrix, 0.0))
        judged = None if interrupted is not None else judged_means(result, judge)

    saved = save_candidates(result, out)
    contact_sheet(result, dict(zip(pool.names, pool.costs)), expected, os.path.join(out, "contact_sheet.png"))
    result.to_frame().to_csv(os.path.join(out, "result.csv"), index=False)
    pd.DataFrame(
        {
            "name": [*pool.names, scorer.name],
            "role": ["generator"] * len(pool) + ["scorer"],
            "cost": [*pool.costs, scorer.cost],
            "cost_unit": result.cost_unit,
        }
    ).to_csv(os.path.join(out, "costs.csv"), index=False)
    print(f"\nlambda = {result.cost_penalty:.4g}" + (f" (calibrated for budget {args.budget})" if args.budget else ""))
    for i, prompt in enumerate(test):
        print(
            f"#{i} {textwrap.shorten(prompt, 60)}\n"
            f"   tried {' > '.join(result.order[i])}; returned {result.returned[i]}; "
            f"cost {result.cost[i] / 1e12:.4g} TFLOPs ({result.normalized_cost[i]:.3f} normalised)"
        )
    if result.errors:
        print("errors:", *(f"{k}: {v}" for k, v in result.errors.items()), sep="\n  ")
    print(
        f"\nmean cost per prompt: cascade {result.cost.mean() / 1e12:.4g} TFLOPs "
        f"({result.normalized_cost.mean():.3f} normalised, scoring included) vs the plain router "
        f"{plan.costs.mean() / 1e12:.4g} TFLOPs ({plan.mean_normalized_cost:.3f}) on the same prompts"
    )
    if judged is not None:
        print(
            f"mean judged quality ({judge.name}): cascade {judged[0]:.4g} vs the plain router {judged[1]:.4g}"
            + ("  (random models: meaningless)" if args.tiny else "")
        )
    print(
        f"{len(saved)} candidate images, contact_sheet.png, result.csv and costs.csv in {out} "
        f"({time.perf_counter() - start:.1f} s in all)"
    )
    if interrupted is not None:
        raise interrupted


if __name__ == "__main__":
    main()
