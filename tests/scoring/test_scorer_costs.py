"""FLOPs of the real scorers, counted from their shipped published configs (no weights, no download)."""

import json
from importlib import resources

import pytest

torch = pytest.importorskip("torch")

from costroute.costs import DEFAULT_PRICE_MODEL  # noqa: E402
from costroute.scoring import (  # noqa: E402
    KNOWN_SCORER_MODELS,
    SCORER_ARCHITECTURES,
    CLIPScorer,
    VQAScorer,
    load_scorer_config,
    scorer_cost,
)


def rel(a, b):
    return abs(a - b) / abs(b)


def source(arch):
    return json.loads(resources.files("costroute").joinpath("configs", "scorers", arch, "_source.json").read_text())


@pytest.fixture(scope="module")
def counted():
    return {arch: scorer_cost(load_scorer_config(arch)) for arch in SCORER_ARCHITECTURES}


# Published counts (open_clip docs/model_profile.csv: params and GFLOPs with multiply-add = 2 FLOPs;
# LLaVA-1.5 7B: 7.06B on its model page, 7,063,427,072 in a training log of the checkpoint).
PUBLISHED = {
    "clip_vit_l14": {"params": 427.62e6, "image": 162.03e9, "text": 13.30e9},
    "clip_vit_h14": {"params": 986.11e6, "image": 334.59e9, "text": 47.09e9},
    "llava_1_5_7b": {"params": 7_063_427_072},
}


@pytest.mark.parametrize("arch", SCORER_ARCHITECTURES)
def test_counted_parameters_match_published(arch, counted):
    cost = counted[arch]
    assert rel(cost.params, PUBLISHED[arch]["params"]) < 1e-3
    assert cost.params == source(arch)["config"]["counted_params"]


@pytest.mark.parametrize("arch", ["clip_vit_l14", "clip_vit_h14"])
def test_clip_flops_match_open_clip_profile(arch, counted):
    cost = counted[arch]
    assert rel(cost.parts["image"], PUBLISHED[arch]["image"]) < 2e-3
    assert rel(cost.parts["text"], PUBLISHED[arch]["text"]) < 2e-3
    assert cost.input_shape == {"image_size": 224, "text_tokens": 77}
    assert cost.parts == {k: v for k, v in zip(("image", "text"), source(arch)["config"]["counted_flops"].values())}


def test_llava_flops(counted):
    cost = counted["llava_1_5_7b"]
    assert cost.input_shape == {"image_size": 336, "image_tokens": 576, "text_tokens": 64}
    # the decoder dominates: about 2 FLOPs per parameter per position over 640 positions
    assert rel(cost.parts["language"], 2 * 6.74e9 * 640) < 0.02
    assert rel(cost.total, 8.910e12) < 1e-3
    longer = scorer_cost(load_scorer_config("llava_1_5_7b"), text_tokens=128)
    assert longer.parts["vision"] == cost.parts["vision"] and longer.parts["language"] > cost.parts["language"]


@pytest.mark.parametrize("hub_id", sorted(KNOWN_SCORER_MODELS))
def test_known_hub_ids_cost_without_download(hub_id, counted, fresh_pipeline_cache):
    scorer = VQAScorer(hub_id) if "llava" in hub_id else CLIPScorer(hub_id)
    assert scorer.cost == counted[KNOWN_SCORER_MODELS[hub_id]].total
    assert scorer.cost_in("usd") == pytest.approx(DEFAULT_PRICE_MODEL.usd_per_image(scorer.cost))
    assert len(fresh_pipeline_cache) == 0


def test_scorer_costs_are_small_next_to_a_generator(counted):
    """Per image: CLIP ViT-L/14 ~0.18 TFLOPs, PickScore ~0.38, VQAScore (LLaVA-1.5 7B) ~8.9."""
    assert [round(counted[a].total / 1e12, 2) for a in SCORER_ARCHITECTURES] == [0.18, 0.38, 8.91]


def test_bad_configs_and_arguments():
    with pytest.raises(ValueError, match="unknown scorer architecture 'clip'"):
        load_scorer_config("clip")
    with pytest.raises(ValueError, match="cannot count the FLOPs of a 'siglip' model"):
        scorer_cost({"model_type": "siglip"})
    with pytest.raises(TypeError, match="config must be a dict"):
        scorer_cost("config.json")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="text_tokens must be a positive integer"):
            scorer_cost(load_scorer_config("clip_vit_l14"), text_tokens=bad)
    with pytest.raises(ValueError, match="text_tokens must be at most 77"):
        scorer_cost(load_scorer_config("clip_vit_l14"), text_tokens=78)
    config = load_scorer_config("clip_vit_l14")
    config["projection_dim"] = 1
    assert load_scorer_config("clip_vit_l14")["projection_dim"] == 768  # a fresh copy each time
