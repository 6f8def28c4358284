"""Prepared GPU check of costroute.scoring, for a CUDA machine without network access.

Run from the repository root::

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/gpu_scorers.py

(``benchmarks/gpu_verify.py`` runs these checks together with the cascade's.)

It needs torch with CUDA and transformers (no download) and writes ``scoring_gpu.json`` to
``$OUT`` (default ``/tmp``):

* ``tiny``: the tiny random CLIP and LLaVA-style models score on ``device="auto"`` (CUDA,
  float16) close to ``device="cpu"`` (float32); the loaded model sits on CUDA in float16;
  the batch size changes the scores by no more than float16 rounding;
* ``clip_l14_random_weights``: CLIP ViT-L/14 built from the shipped config with random
  weights, saved and scored through ``CLIPScorer``: images per second and achieved TFLOP/s
  against the counted FLOPs;
* ``llava_7b_random_weights``: LLaVA-1.5 7B from the shipped config with random weights,
  put in the model cache directly and scored through ``VQAScorer``.

It needs a GPU and minutes of it; importing it runs nothing.
"""

from __future__ import annotations

import json
import os
import time
import traceback

import numpy as np

WORDS = "a cat dog red blue tree on under big small house car with two three".split()


def _images(rng, n, side=64):
    from PIL import Image

    return [Image.fromarray((rng.random((side, side + 8, 3)) * 255).astype(np.uint8)) for _ in range(n)]


def _prompts(rng, n):
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 14)))) for _ in range(n)]


def check_tiny(rng) -> dict:
    import costroute.scoring as S
    from costroute.generators import pipeline_cache

    clip = S.build_tiny_clip("/tmp/tiny-clip", seed=3)
    vlm = S.build_tiny_vlm("/tmp/tiny-vlm")
    prompts, images = _prompts(rng, 24), _images(rng, 24)
    out = {}
    for kind, cls, folder, kwargs in [
        ("clip", S.CLIPScorer, clip, {"output": "cosine"}),
        ("vqa", S.VQAScorer, vlm, {}),
    ]:
        cpu = cls(folder, device="cpu", **kwargs).score(prompts, images, batch_size=8, progress=False)
        scorer = cls(folder, **kwargs)  # device="auto", dtype="auto": CUDA, float16
        gpu = scorer.score(prompts, images, batch_size=8, progress=False)
        gpu_one = scorer.score(prompts, images, batch_size=1, progress=False)
        net, _ = scorer.load()
        out[kind] = {
            "device": str(net.device),
            "dtype": str(net.dtype),
            "max_abs_cpu_vs_gpu": float(np.abs(cpu - gpu).max()),
            "max_rel_cpu_vs_gpu": float(np.max(np.abs(cpu - gpu) / np.maximum(np.abs(cpu), 1e-12))),
            "max_abs_batch8_vs_batch1": float(np.abs(gpu - gpu_one).max()),
            "finite": bool(np.isfinite(gpu).all()),
        }
    out["cache"] = pipeline_cache.info().astype(str).to_dict("records")
    pipeline_cache.clear()
    return out


def check_clip_l14(rng) -> dict:
    import torch
    from transformers import AutoProcessor, CLIPConfig, CLIPImageProcessor, CLIPModel

    import costroute.scoring as S
    from costroute.generators import pipeline_cache

    torch.manual_seed(0)
    with torch.device("cuda"):
        model = CLIPModel(CLIPConfig(**S.load_scorer_config("clip_vit_l14"))).half()
    model.save_pretrained("/tmp/clip-l14-random")
    del model
    processor = AutoProcessor.from_pretrained("/tmp/tiny-clip")  # character tokenizer: ids fit any CLIP vocabulary
    processor.image_processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    processor.save_pretrained("/tmp/clip-l14-processor")
    torch.cuda.empty_cache()
    scorer = S.CLIPScorer("/tmp/clip-l14-random", processor="/tmp/clip-l14-processor")
    prompts, images = _prompts(rng, 512), _images(rng, 512, 256)
    scorer.score(prompts[:64], images[:64], progress=False)  # load and warm up
    out = {"counted_gflops_per_image": scorer.cost / 1e9}
    for batch in (16, 64, 256):
        torch.cuda.synchronize()
        start = time.perf_counter()
        scores = scorer.score(prompts, images, batch_size=batch, progress=False)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        out[f"batch{batch}"] = {
            "images_per_s": round(512 / seconds, 1),
            "achieved_tflops_with_preprocessing": round(scorer.cost * 512 / seconds / 1e12, 2),
            "finite": bool(np.isfinite(scores).all()),
        }
    net, proc = scorer.load()
    inputs = proc(
        text=prompts[:256], images=images[:256], return_tensors="pt", padding=True, truncation=True, max_length=77
    )
    inputs = {k: v.to("cuda", torch.float16) if v.is_floating_point() else v.to("cuda") for k, v in inputs.items()}
    with torch.no_grad():

        def forward():
            net.visual_projection(net.vision_model(pixel_values=inputs["pixel_values"]).pooler_output)
            net.text_projection(net.text_model(input_ids=inputs["input_ids"]).pooler_output)

        forward()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(5):
            forward()
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / 5
    out["model_only_batch256"] = {
        "images_per_s": round(256 / seconds, 1),
        "achieved_tflops": round(scorer.cost * 256 / seconds / 1e12, 1),
    }
    pipeline_cache.clear()
    torch.cuda.empty_cache()
    return out


def check_llava_7b(rng) -> dict:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor, CLIPImageProcessor, LlavaConfig, LlavaProcessor

    import costroute.scoring as S
    from costroute.generators import pipeline_cache

    tiny = AutoProcessor.from_pretrained("/tmp/tiny-vlm")
    config = S.load_scorer_config("llava_1_5_7b")
    config["image_token_index"] = tiny.tokenizer.convert_tokens_to_ids("<image>")
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.device("cuda"):
        try:
            model = AutoModelForImageTextToText.from_config(LlavaConfig(**config), dtype=torch.float16).eval()
        except TypeError:
            model = AutoModelForImageTextToText.from_config(LlavaConfig(**config), torch_dtype=torch.float16).eval()
    init_seconds = time.perf_counter() - start
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}),
        tokenizer=tiny.tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=tiny.chat_template,
    )
    processor.tokenizer.padding_side = "right"
    counted = S.VQAScorer().cost
    scorer = S.VQAScorer("/tmp/tiny-vlm", name="llava-7b-random", cost=counted)
    pipeline_cache.get(scorer._load_key(), lambda: (model, processor))
    prompts, images = _prompts(rng, 64), _images(rng, 64, 256)
    ids = processor(images=images[:1], text=scorer.texts(prompts[:1], processor), return_tensors="pt")["input_ids"]
    out = {
        "init_seconds": round(init_seconds, 1),
        "tokens_first_prompt": int(ids.shape[1]),
        "counted_tflops_per_image": counted / 1e12,
        "weights_gb": round(torch.cuda.memory_allocated() / 2**30, 1),
    }
    scorer.score(prompts[:8], images[:8], batch_size=8, progress=False)  # warm up
    reference = None
    for batch in (1, 8, 32):
        torch.cuda.synchronize()
        start = time.perf_counter()
        scores = scorer.score(prompts, images, batch_size=batch, progress=False)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        row = {
            "images_per_s": round(64 / seconds, 2),
            "achieved_tflops": round(counted * 64 / seconds / 1e12, 1),
            "in_0_1": bool(((scores >= 0) & (scores <= 1)).all()),
        }
        if reference is None:
            reference = scores
        else:
            row["max_rel_vs_batch1"] = float(np.max(np.abs(scores - reference) / np.maximum(reference, 1e-12)))
        out[f"batch{batch}"] = row
    out["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    pipeline_cache.clear()
    torch.cuda.empty_cache()
    return out


def main() -> dict:
    import torch
    import transformers

    started = time.time()
    rng = np.random.default_rng(0)
    report = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    for name, check in [
        ("tiny", check_tiny),
        ("clip_l14_random_weights", check_clip_l14),
        ("llava_7b_random_weights", check_llava_7b),
    ]:
        start = time.time()
        try:
            report[name] = check(rng)
        except Exception as exc:  # report and go on with the next check
            report[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}
        report[name + "_seconds"] = round(time.time() - start, 1)
        print(name, json.dumps(report[name], default=str), flush=True)
    report["total_seconds"] = round(time.time() - started, 1)
    with open(os.path.join(os.environ.get("OUT", "/tmp"), "scoring_gpu.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    return report


if __name__ == "__main__":
    main()
