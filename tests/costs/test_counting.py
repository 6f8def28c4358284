"""Tests of costroute.costs._counting: FLOPs of one forward, parameters, and component counts."""

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from costroute.costs import component_cost, count_flops, count_parameters, load_config  # noqa: E402


def test_import_does_not_import_torch():
    code = (
        "import sys, costroute.costs; "
        "print('torch' in sys.modules, 'diffusers' in sys.modules, 'transformers' in sys.modules, 'tqdm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False", "False"]


def test_count_flops_counts_attention_on_real_cpu_like_on_meta():
    from diffusers import UNet2DConditionModel

    config = dict(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )

    def inputs(device):
        return dict(
            sample=torch.zeros(1, 4, 8, 8, device=device),
            timestep=torch.tensor([10], device=device),
            encoder_hidden_states=torch.zeros(1, 7, 32, device=device),
        )

    torch.manual_seed(0)
    real = UNet2DConditionModel(**config)
    with torch.device("meta"):
        meta = UNet2DConditionModel(**config)
    real_flops = count_flops(real, **inputs("cpu"))
    meta_flops = count_flops(meta, **inputs("meta"))
    assert real_flops == meta_flops > 0

    # The attention matmuls are really in the count: a module made only of attention.
    from diffusers.models.attention_processor import Attention

    attn = Attention(query_dim=16, heads=2, dim_head=8)
    x = torch.zeros(1, 10, 16)
    projections = 4 * 2 * 10 * 16 * 16  # q, k, v, out: 2*tokens*in*out each
    scores_and_mix = 2 * (2 * 2 * 10 * 10 * 8)  # QK^T and AV: 2*heads*T*T*d each
    assert count_flops(attn, x) == projections + scores_and_mix
    with torch.device("meta"):
        attn_meta = Attention(query_dim=16, heads=2, dim_head=8)
    assert count_flops(attn_meta, torch.zeros(1, 10, 16, device="meta")) == projections + scores_and_mix


def test_count_flops_and_parameters_small():
    layer = torch.nn.Linear(8, 4)
    assert count_flops(layer, torch.zeros(3, 8)) == 2 * 3 * 8 * 4
    assert count_parameters(layer) == 36
    with pytest.raises(TypeError):
        count_parameters(object())
    with pytest.raises(TypeError):
        count_flops(42)


def test_component_cost_is_cached():
    cfg = load_config("sd15", "text_encoder")
    first = component_cost(cfg, text_tokens=77)
    second = component_cost(dict(cfg), text_tokens=77, calls=3)
    assert second.flops_per_call == first.flops_per_call and second.flops == 3 * first.flops
    with pytest.raises(ValueError, match="supported classes"):
        component_cost({"_class_name": "VQModel"}, height=8, width=8)
    with pytest.raises(ValueError, match="text_tokens is required"):
        component_cost(cfg)
    with pytest.raises(ValueError, match="calls must be a non-negative integer"):
        component_cost(cfg, text_tokens=77, calls=-1)


def test_component_counts_are_the_published_ones():
    """Exact counts: the layout of the counting code must not change a single FLOP."""
    clip = component_cost(load_config("sd15", "text_encoder"), text_tokens=77)
    assert (clip.flops_per_call, clip.params) == (13298503680, 123060480)
    vae = component_cost(load_config("sd15", "vae"), name="vae_decode", height=64, width=64)
    assert (vae.flops_per_call, vae.params) == (2514518933504, 83653863)
    assert vae.name == "vae_decode" and vae.model_class == "AutoencoderKL" and vae.input_shape == (64, 64)
    unet = component_cost(load_config("sd15", "unet"), calls=100, height=64, width=64, text_tokens=77, text_dim=768)
    assert (unet.flops_per_call, unet.params) == (803273441280, 859520964)
    assert unet.flops == 100 * 803273441280
    assert unet.to_dict()["input_shape"] == [64, 64, 77, 768, 0]
