"""DiffusersGenerator on tiny random SD and SDXL pipelines saved to a folder."""

import copy
import os
import shutil

import numpy as np
import pytest
from sklearn.base import clone

from costroute import CostAwareRouter
from costroute.costs import cost_from_pretrained
from costroute.generators import SCHEDULERS, DiffusersGenerator, GeneratorRegistry, pipeline_cache


def pixels(images):
    return [np.asarray(im, dtype=np.int16) for im in images]


# ------------------------------------------------------------------ cost
def test_cost_counted_from_the_folder_configs(tiny_sd):
    two = DiffusersGenerator("two", tiny_sd, steps=2, guidance_scale=5.0)
    four = two.clone(name="four", steps=4)
    assert two.cost == cost_from_pretrained(tiny_sd, steps=2, guidance=True).total
    assert four.cost > two.cost
    unet2 = two.cost_breakdown().components["unet"].flops
    assert four.cost_breakdown().components["unet"].flops == 2 * unet2
    # guidance_scale <= 1 runs no unconditional batch: half the denoiser FLOPs
    plain = two.clone(name="plain", guidance_scale=1.0)
    assert 2 * plain.cost_breakdown().components["unet"].flops == unet2
    assert plain.cost_breakdown().components["vae_decode"] == two.cost_breakdown().components["vae_decode"]
    # resolution: the default is the pipeline's own (sample_size x 8 = 64 px); 2x the side, 4x the latent
    assert (two.cost_breakdown().height, two.cost_breakdown().width) == (64, 64)
    big = two.clone(height=128, width=128)
    assert big.cost_breakdown().components["unet"].flops > 3 * unet2


def test_explicit_cost_wins_and_second_order_schedulers_cost_more(tiny_sdxl):
    spec = DiffusersGenerator("x", tiny_sdxl, steps=3, guidance_scale=5.0, cost=123.0)
    assert spec.cost == 123.0 and spec.clone(steps=10).cost == 123.0
    euler = DiffusersGenerator("euler", tiny_sdxl, steps=3)
    heun = euler.clone(name="heun", scheduler="heun")
    assert heun.cost_breakdown().components["unet"].calls == 2 * (2 * 3 - 1)
    assert euler.cost_breakdown().components["unet"].calls == 2 * 3


def test_cost_is_lazy_cheap_and_never_loads(tiny_sd):
    spec = DiffusersGenerator("lazy", tiny_sd, steps=2)
    assert spec._cost is None and "not counted" in repr(spec)
    assert spec.cost > 0
    assert len(pipeline_cache) == 0 and pipeline_cache.loads == 0


# ------------------------------------------------------------------ errors
def test_missing_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DiffusersGenerator("gone", tmp_path / "no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        DiffusersGenerator("empty", str(tmp_path / "empty"))


def test_unknown_scheduler_lists_valid_ones(tiny_sd):
    with pytest.raises(ValueError, match=r"unknown scheduler 'eulr'.*'ddim'.*'euler_a'"):
        DiffusersGenerator("s", tiny_sd, scheduler="eulr")
    with pytest.raises(ValueError, match="unknown scheduler"):
        DiffusersGenerator("s", tiny_sd).clone(scheduler="dpm+++")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 0}, "steps"),
        ({"guidance_scale": -1.0}, "guidance_scale"),
        ({"height": 100}, "height"),
        ({"dtype": "int8"}, "unknown dtype"),
        ({"arch": "sd3"}, "unknown arch"),
        ({"components": {"text_encoder": "x/y"}}, "cannot replace component"),
    ],
)
def test_bad_settings(tiny_sd, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiffusersGenerator("bad", tiny_sd, **kwargs)


def test_unknown_hub_id_needs_arch_or_cost():
    spec = DiffusersGenerator("hub", "someone/unknown-model")
    with pytest.raises(ValueError, match="pass arch="):
        spec.cost
    assert DiffusersGenerator(
        "hub", "someone/unknown-model", arch="sd15", steps=50, height=512, width=512
    ).cost == pytest.approx(82.86e12, rel=0.01)
    assert DiffusersGenerator("hub", "someone/unknown-model", cost=5.0).cost == 5.0


def test_folder_deleted_after_construction_fails_cleanly_on_load(tiny_sd, tmp_path):
    folder = shutil.copytree(tiny_sd, tmp_path / "copy")
    spec = DiffusersGenerator("copy", folder, steps=2)
    shutil.rmtree(folder)
    with pytest.raises(OSError, match="could not load the diffusers pipeline"):
        spec.load()


def test_offline_hub_id_without_cache_says_the_weights_are_not_cached(monkeypatch):
    """Not "no model_index.json": the weights are not cached and cannot be downloaded, and how to get them."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = DiffusersGenerator("hub", "someone/not-cached-model", cost=1.0, device="cpu", dtype="float32")
    with pytest.raises(OSError) as info:
        spec.load()
    message = str(info.value)
    assert message.startswith("the weights of 'someone/not-cached-model' are not in the local Hugging Face cache")
    assert "HF_HUB_OFFLINE is set, so nothing can be downloaded" in message
    assert "`hf download someone/not-cached-model`" in message and "save_pretrained(folder)" in message
    assert "model_index.json" not in message and len(pipeline_cache) == 0


def test_offline_component_without_cache_is_named(tiny_sd, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = DiffusersGenerator("lcm", tiny_sd, components={"unet": "org/distilled-unet"}, cost=1.0, device="cpu")
    with pytest.raises(OSError, match=r"^the weights of 'org/distilled-unet' are not in the local Hugging Face cache"):
        spec.load()


def test_loading_and_generating_draw_no_library_progress_bars(tiny_sd, capsys):
    """diffusers' "Loading pipeline components" and per-step bars stay off; the settings are restored."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    before = (diffusers_logging.is_progress_bar_enabled(), transformers_logging.is_progress_bar_enabled())
    capsys.readouterr()
    spec = DiffusersGenerator("sd", tiny_sd, steps=2, device="cpu", dtype="float32")
    spec.generate_images(["a red cat"], [1])
    err = capsys.readouterr().err
    assert "Loading" not in err and "%|" not in err and "it/s" not in err, err
    assert (diffusers_logging.is_progress_bar_enabled(), transformers_logging.is_progress_bar_enabled()) == before


# ------------------------------------------------------------------ loading, sharing, eviction
def test_specs_sharing_weights_load_once_and_scheduler_swap_is_private(tiny_sd):
    base = DiffusersGenerator("base", tiny_sd, steps=2, guidance_scale=5.0, device="cpu")
    ddim = base.clone(name="ddim", steps=3, scheduler="ddim", guidance_scale=1.0)
    img_base = pixels(base.generate_images(["a red cat"], [7]))[0]
    pipe = ddim.load()
    original = type(pipe.scheduler).__name__
    img_ddim = pixels(ddim.generate_images(["a red cat"], [7]))[0]
    assert pipeline_cache.loads == 1 and len(pipeline_cache) == 1
    assert ddim.load() is base.load() is pipe
    assert type(pipe.scheduler).__name__ == original == "PNDMScheduler"
    assert type(ddim.pipeline().scheduler).__name__ == SCHEDULERS["ddim"][0]
    assert not np.array_equal(img_base, img_ddim)
    # the shared pipeline is unchanged: base gives the same pixels again
    assert np.array_equal(pixels(base.generate_images(["a red cat"], [7]))[0], img_base)


def test_lru_eviction_between_models(tiny_sd, tiny_sdxl):
    pipeline_cache.max_loaded = 1
    sd = DiffusersGenerator("sd", tiny_sd, steps=2)
    xl = DiffusersGenerator("xl", tiny_sdxl, steps=2)
    sd.load()
    xl.load()
    assert pipeline_cache.keys() == [xl._load_key()] and pipeline_cache.evictions == 1
    sd.load()
    assert pipeline_cache.loads == 3
    sd.unload()
    assert len(pipeline_cache) == 0


def test_auto_dtype_and_device_on_cpu(tiny_sd):
    import torch

    spec = DiffusersGenerator("auto", tiny_sd, steps=2)
    model, dtype, device, *_ = spec._load_key()
    assert (dtype, device) == (("float16", "cuda") if torch.cuda.is_available() else ("float32", "cpu"))
    assert model == os.path.abspath(tiny_sd)
    if not torch.cuda.is_available():
        assert spec.load().unet.dtype == torch.float32


def test_copies_never_hold_weights(tiny_sd):
    import torch

    spec = DiffusersGenerator("w", tiny_sd, steps=2)
    spec.load()
    for other in (copy.deepcopy(spec), spec.clone(steps=3)):
        held = [v for v in vars(other).values() if isinstance(v, torch.nn.Module)]
        assert not held
        assert other.load() is spec.load()
    assert pipeline_cache.loads == 1
    router = CostAwareRouter(GeneratorRegistry([spec, spec.clone(name="w3", steps=3)]))
    cloned = clone(router)
    assert cloned.generators == router.generators and cloned.generators is not router.generators


# ------------------------------------------------------------------ images and seeds
@pytest.mark.parametrize("kind", ["sd", "sdxl"])
def test_same_seed_same_pixels_whatever_the_batch(kind, tiny_sd, tiny_sdxl):
    """float64: exactly the same pixels for a prompt alone, in a batch, in another order."""
    folder = tiny_sd if kind == "sd" else tiny_sdxl
    spec = DiffusersGenerator(kind, folder, steps=2, guidance_scale=5.0, dtype="float64", device="cpu")
    prompts, seeds = ["a red cat", "two dogs on a hill", "zzz", "q"], [11, 22, 33, 44]
    batch = pixels(spec.generate_images(prompts, seeds))
    alone = [pixels(spec.generate_images([p], [s]))[0] for p, s in zip(prompts, seeds)]
    reordered = pixels(spec.generate_images(prompts[::-1], seeds[::-1]))[::-1]
    for b, a, r in zip(batch, alone, reordered):
        assert b.shape == (64, 64, 3)
        assert np.array_equal(b, a) and np.array_equal(b, r)
    assert not np.array_equal(batch[0], batch[1])  # different seeds/prompts, different images
    assert not np.array_equal(batch[0], pixels(spec.generate_images(prompts[:1], [12]))[0])


def test_float32_batches_agree_up_to_rounding(tiny_sd):
    """float32 CPU kernels sum in a batch-dependent order: pixels agree to +-1 level at most."""
    spec = DiffusersGenerator("f32", tiny_sd, steps=2, guidance_scale=5.0, dtype="float32", device="cpu")
    prompts, seeds = ["a red cat", "two dogs", "zzz"], [1, 2, 3]
    batch = pixels(spec.generate_images(prompts, seeds))
    alone = [pixels(spec.generate_images([p], [s]))[0] for p, s in zip(prompts, seeds)]
    for b, a in zip(batch, alone):
        diff = np.abs(b - a)
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_pipeline_kwargs_reach_the_call(tiny_sd):
    spec = DiffusersGenerator("neg", tiny_sd, steps=2, guidance_scale=5.0, negative_prompt="blurry")
    assert spec.pipeline_kwargs == {"negative_prompt": "blurry"}
    plain = spec.clone(name="plain", negative_prompt=None)
    a, b = pixels(spec.generate_images(["a cat"], [1]))[0], pixels(plain.generate_images(["a cat"], [1]))[0]
    assert not np.array_equal(a, b)
    with pytest.raises(ValueError, match="2 prompts but 1 seeds"):
        spec.generate_images(["a", "b"], [1])
    assert spec.generate_images([], []) == []


def test_a_hub_id_that_is_not_cached_fails_in_seconds_without_hf_hub_offline(tmp_path):
    """Without network and without HF_HUB_OFFLINE, the clear not-cached error comes at once.

    The hub client alone retries each missing file five times with backoff (about 30 s per
    model, 71 s for the README's presets); one quick connection probe replaces that. Run in a
    fresh process with HF_HUB_OFFLINE unset, as a user would; with network the id does not
    exist and the same message comes as quickly.
    """
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import time
        from costroute.generators import DiffusersGenerator
        from costroute.scoring import CLIPScorer
        for spec in (DiffusersGenerator("hub", "costroute-tests/no-such-model-3f9c1", cost=1.0, device="cpu",
                                        dtype="float32"),
                     CLIPScorer("costroute-tests/no-such-clip-3f9c1", cost=1.0, device="cpu")):
            start = time.perf_counter()
            try:
                spec.load()
            except OSError as exc:
                print(f"{time.perf_counter() - start:.2f}", exc)
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["HF_HOME"] = str(tmp_path / "hf-home")  # an empty cache
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout + done.stderr[-3000:]
    for line, what in zip(lines, ("", "scorer 'clipscore:no-such-clip-3f9c1' could not load model")):
        seconds, message = line.split(" ", 1)
        assert float(seconds) < 10.0, line
        assert message.startswith(what)
        assert "are not in the local Hugging Face cache" in message and "`hf download costroute-tests/" in message
    assert "Retrying in" not in done.stderr
