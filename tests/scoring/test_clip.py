"""CLIPScorer on a tiny random CLIP saved to a folder: exact agreement with a manual computation."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from costroute.costs import DEFAULT_PRICE_MODEL, GPUPriceModel, count_flops  # noqa: E402
from costroute.scoring import CLIPScorer  # noqa: E402


def manual_cosine(folder, prompts, images):
    """Cosine of CLIP's projected image and text embeddings, computed without the scorer."""
    from transformers import AutoProcessor, CLIPModel

    model = CLIPModel.from_pretrained(folder, local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    out = []
    for prompt, image in zip(prompts, images):  # one pair at a time: no padding involved
        inputs = processor(
            text=[prompt], images=[image.convert("RGB")], return_tensors="pt", truncation=True, max_length=77
        )
        with torch.no_grad():
            img = model.visual_projection(model.vision_model(pixel_values=inputs["pixel_values"]).pooler_output)
            txt = model.text_projection(model.text_model(input_ids=inputs["input_ids"]).pooler_output)
        out.append(float(torch.nn.functional.cosine_similarity(img, txt).item()))
    return np.array(out), float(model.logit_scale.exp().item())


def test_scores_equal_manual_cosine(tiny_clip, prompts, images):
    cos, scale = manual_cosine(tiny_clip, prompts, images)
    assert (cos > 0).any() and (cos < 0).any()  # the clamp below is exercised
    cosine = CLIPScorer(tiny_clip, output="cosine").score(prompts, images, progress=False)
    np.testing.assert_allclose(cosine, cos, atol=1e-5)
    clipscore = CLIPScorer(tiny_clip).score(prompts, images, progress=False)
    np.testing.assert_allclose(clipscore, np.maximum(100 * cos, 0), atol=1e-3)
    assert (clipscore[cos < 0] == 0).all() and (clipscore[cos > 0] > 0).all()
    logit = CLIPScorer(tiny_clip, output="logit").score(prompts, images, progress=False)
    np.testing.assert_allclose(logit, scale * cos, rtol=1e-5, atol=1e-5)


def test_one_finite_score_per_image_deterministic_and_in_order(tiny_clip, prompts, images):
    scorer = CLIPScorer(tiny_clip, output="cosine")
    first = scorer.score(prompts, images, progress=False)
    assert first.shape == (len(prompts),) and first.dtype == float and np.isfinite(first).all()
    np.testing.assert_array_equal(scorer.score(prompts, images, progress=False), first)
    order = [3, 0, 5, 1, 4, 2]
    shuffled = scorer.score([prompts[i] for i in order], [images[i] for i in order], progress=False)
    np.testing.assert_allclose(shuffled, first[order], atol=1e-6)
    assert len(set(np.round(first, 6))) == len(first)  # distinct pairs get distinct scores


@pytest.mark.parametrize("batch_size", [1, 2, 4, 100])
def test_batch_size_does_not_change_scores(tiny_clip, prompts, images, batch_size):
    scorer = CLIPScorer(tiny_clip, output="cosine")
    reference = scorer.score(prompts, images, batch_size=len(prompts), progress=False)
    np.testing.assert_allclose(
        scorer.score(prompts, images, batch_size=batch_size, progress=False), reference, atol=1e-6
    )


def test_arrays_score_like_the_same_pil_images(tiny_clip, prompts, images):
    scorer = CLIPScorer(tiny_clip, output="cosine")
    arrays = [np.asarray(im) for im in images]
    floats = [np.asarray(im).astype(np.float32) / 255 for im in images]
    reference = scorer.score(prompts, images, progress=False)
    np.testing.assert_allclose(scorer.score(prompts, arrays, progress=False), reference, atol=1e-6)
    np.testing.assert_allclose(scorer.score(prompts, floats, progress=False), reference, atol=1e-6)
    rgba = [im.convert("RGBA") for im in images]
    np.testing.assert_allclose(scorer.score(prompts, rgba, progress=False), reference, atol=1e-6)


def test_separate_processor_folder(tiny_clip, prompts, images, tmp_path):
    """PickScore's layout: the checkpoint without a processor, the processor from another repo."""
    from transformers import AutoProcessor, CLIPModel

    model_only = tmp_path / "model-only"
    CLIPModel.from_pretrained(tiny_clip, local_files_only=True).save_pretrained(model_only)
    processor_only = tmp_path / "processor-only"
    AutoProcessor.from_pretrained(tiny_clip, local_files_only=True).save_pretrained(processor_only)
    split = CLIPScorer(model_only, processor=processor_only, output="logit", name="pickscore")
    together = CLIPScorer(tiny_clip, output="logit")
    np.testing.assert_allclose(
        split.score(prompts, images, progress=False), together.score(prompts, images, progress=False), atol=1e-6
    )
    assert split.name == "pickscore" and together.name == "logit:tiny-clip"
    with pytest.raises(OSError, match="could not load model"):
        CLIPScorer(model_only).score(prompts[:1], images[:1], progress=False)  # no processor in that folder


def test_lazy_loading_through_the_shared_cache(tiny_clip, prompts, images, fresh_pipeline_cache):
    scorer = CLIPScorer(tiny_clip)
    scorer.cost  # counting the cost loads no weights
    assert len(fresh_pipeline_cache) == 0 and not scorer.loaded
    scorer.score(prompts[:2], images[:2], progress=False)
    assert scorer.loaded and len(fresh_pipeline_cache) == 1
    CLIPScorer(tiny_clip, output="cosine", name="other", batch_size=3).score(prompts[:2], images[:2], progress=False)
    assert len(fresh_pipeline_cache) == 1 and fresh_pipeline_cache.hits >= 1  # same weights shared
    scorer.unload()
    assert not scorer.loaded and len(fresh_pipeline_cache) == 0


def test_cost_is_counted_from_the_config(tiny_clip):
    """The meta-device count equals a count of the real model's forward on CPU tensors."""
    from transformers import CLIPModel

    scorer = CLIPScorer(tiny_clip)
    model = CLIPModel.from_pretrained(tiny_clip, local_files_only=True).eval()
    image = count_flops(
        lambda x: model.visual_projection(model.vision_model(pixel_values=x).pooler_output), torch.zeros(1, 3, 32, 32)
    )
    text = count_flops(
        lambda x: model.text_projection(model.text_model(input_ids=x).pooler_output),
        torch.zeros(1, 77, dtype=torch.long),
    )
    breakdown = scorer.cost_breakdown()
    assert breakdown.parts == {"image": image, "text": text}
    assert scorer.cost == image + text and scorer.cost_unit == "flops"
    assert breakdown.input_shape == {"image_size": 32, "text_tokens": 77}


def test_cost_in_dollars_uses_the_price_model(tiny_clip):
    flops = CLIPScorer(tiny_clip).cost
    usd = CLIPScorer(tiny_clip, cost_unit="usd")
    assert usd.cost == pytest.approx(DEFAULT_PRICE_MODEL.usd_per_image(flops), rel=1e-12)
    assert usd.cost_in("flops") == flops
    cheap = GPUPriceModel("toy", usd_per_hour=3.6, peak_flops_per_second=1e12, utilization=1.0)
    assert CLIPScorer(tiny_clip, cost_unit="usd", price_model=cheap).cost == pytest.approx(flops / 1e12 * 1e-3)
    assert usd.cost_in("usd", price_model=cheap) == pytest.approx(flops / 1e12 * 1e-3)
    assert CLIPScorer(tiny_clip, cost=2.5e9).cost == 2.5e9  # an explicit cost wins


def test_bad_arguments_raise_clear_errors(tiny_clip, prompts, images, tmp_path):
    scorer = CLIPScorer(tiny_clip)
    with pytest.raises(ValueError, match="got 2 prompts but 3 images"):
        scorer.score(prompts[:2], images[:3])
    with pytest.raises(TypeError, match=r"images\[1\] must be a PIL image.*got str"):
        scorer.score(prompts[:2], [images[0], "cat.png"])
    with pytest.raises(TypeError, match=r"images\[0\].*NoneType \(a missing image\?\)"):
        scorer.score(prompts[:1], [None])
    with pytest.raises(ValueError, match=r"images\[0\].*values must lie in \[0, 1\]"):
        scorer.score(prompts[:1], [np.full((8, 8, 3), 2.0)])
    with pytest.raises(ValueError, match=r"images\[0\] must be an \(H, W, 3\)"):
        scorer.score(prompts[:1], [np.zeros((8, 8, 5), dtype=np.uint8)])
    with pytest.raises(TypeError, match="single str"):
        scorer.score("a cat", images[:1])
    with pytest.raises(TypeError, match=r"prompts\[1\] must be a str"):
        scorer.score(["a", 3], images[:2])
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=f"batch_size must be a positive integer, got {bad!r}"):
            scorer.score(prompts, images, batch_size=bad)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        CLIPScorer(tiny_clip, batch_size=0)
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda'.*got 'tpu:7'"):
        CLIPScorer(tiny_clip, device="tpu:7")
    with pytest.raises(ValueError, match="dtype must be one of"):
        CLIPScorer(tiny_clip, dtype="int8")
    with pytest.raises(ValueError, match="output must be one of"):
        CLIPScorer(tiny_clip, output="probability")
    with pytest.raises(ValueError, match="cost_unit must be one of"):
        CLIPScorer(tiny_clip, cost_unit="gpu-hours")
    with pytest.raises(FileNotFoundError, match="model folder .* does not exist"):
        CLIPScorer(tmp_path / "missing")
    with pytest.raises(TypeError, match="model must be a hub id"):
        CLIPScorer(42)
    with pytest.raises(TypeError, match="price_model must be a costroute.costs.GPUPriceModel"):
        CLIPScorer(tiny_clip, price_model="h100")
    with pytest.raises(TypeError, match="progress must be True or False"):
        scorer.score(prompts, images, progress="yes")
    assert scorer.score([], [], progress=False).shape == (0,)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_unavailable_device_is_a_clear_error(tiny_clip, prompts, images, fresh_pipeline_cache):
    scorer = CLIPScorer(tiny_clip, device="cuda")
    with pytest.raises(ValueError, match="device='cuda' but CUDA is not available"):
        scorer.score(prompts[:1], images[:1])
    assert len(fresh_pipeline_cache) == 0


def test_unknown_hub_id_cost_needs_an_explicit_cost():
    scorer = CLIPScorer("someone/unknown-clip")
    with pytest.raises(ValueError, match="pass an explicit cost="):
        scorer.cost
    assert CLIPScorer("someone/unknown-clip", cost=1e11).cost == 1e11


def test_progress_bar_on_stderr_and_switchable(tiny_clip, prompts, images, capsys):
    scorer = CLIPScorer(tiny_clip)
    scorer.score(prompts, images, batch_size=2, progress=True)
    captured = capsys.readouterr()
    assert "scoring (clipscore:tiny-clip)" in captured.err and "6/6" in captured.err and captured.out == ""
    scorer.score(prompts, images, batch_size=2, progress=False)
    captured = capsys.readouterr()
    assert "scoring" not in captured.err and captured.out == ""


def test_repr_and_equality(tiny_clip):
    a, b = CLIPScorer(tiny_clip), CLIPScorer(tiny_clip)
    assert a == b and hash(a) == hash(b)
    assert a != CLIPScorer(tiny_clip, output="cosine")
    assert repr(a).startswith("CLIPScorer(model=") and "output='clipscore'" in repr(a)
