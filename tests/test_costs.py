"""Tests of costroute.costs: FLOPs counted from published architectures, and the price model."""

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from costroute.costs import (  # noqa: E402
    ARCHITECTURES,
    COMPONENTS,
    DEFAULT_PRICE_MODEL,
    GPUPriceModel,
    PipelineCost,
    component_cost,
    cost_from_pretrained,
    count_flops,
    count_parameters,
    diffusion_cost_from_configs,
    load_config,
    pipeline_cost,
)


def rel(a, b):
    return abs(a - b) / abs(b)


# Counting a full-size component takes ~0.5-2 s on 2 cores; count each once per module.
@pytest.fixture(scope="module")
def sd15():
    return pipeline_cost("sd15")


@pytest.fixture(scope="module")
def sdxl():
    return pipeline_cost("sdxl")


def test_import_does_not_import_torch():
    code = "import sys, costroute.costs; print('torch' in sys.modules, 'diffusers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_sd15_reference_counts(sd15):
    unet, vae, clip = sd15.components["unet"], sd15.components["vae_decode"], sd15.components["text_encoder"]
    assert rel(unet.params, 859.52e6) < 1e-3
    assert rel(unet.flops_per_call, 803e9) < 0.02  # 64x64 latent, batch 1
    assert unet.input_shape[:2] == (64, 64)
    assert rel(vae.flops_per_call, 2.5e12) < 0.02  # decoder to 512 px
    assert rel(vae.params, 83.65e6) < 1e-3
    assert rel(clip.flops_per_call, 13e9) < 0.03  # CLIP ViT-L/14 text, 77 tokens
    assert rel(clip.params, 123.1e6) < 1e-3
    assert sd15.total == unet.flops + vae.flops + clip.flops
    assert (sd15.height, sd15.width, sd15.steps, sd15.guidance) == (512, 512, 50, True)


def test_sdxl_reference_counts(sdxl):
    unet = sdxl.components["unet"]
    assert rel(unet.params, 2567.5e6) < 1e-3
    assert rel(unet.flops_per_call, 6.76e12) < 0.02  # 128x128 latent
    assert unet.input_shape == (128, 128, 77, 2048, 1280)  # text_time conditioning on the bigG pooled 1280-d
    assert rel(sdxl.components["text_encoder_2"].params, 694.7e6) < 1e-3
    assert list(sdxl.components) == ["text_encoder", "text_encoder_2", "unet", "vae_decode"]


def test_guidance_doubles_denoiser(sd15):
    plain = pipeline_cost("sd15", guidance=False)
    assert sd15.components["unet"].flops == 2 * plain.components["unet"].flops
    assert sd15.components["unet"].calls == 100 and plain.components["unet"].calls == 50
    assert sd15.total - plain.total == plain.components["unet"].flops


def test_total_linear_in_steps(sd15):
    per_call = sd15.components["unet"].flops_per_call
    totals = [pipeline_cost("sd15", steps=s).total for s in (0, 1, 10, 25)]
    fixed = totals[0]
    assert fixed == sd15.components["vae_decode"].flops + sd15.components["text_encoder"].flops
    for s, total in zip((0, 1, 10, 25), totals):
        assert total == fixed + 2 * per_call * s


def test_cost_order(sdxl):
    turbo = pipeline_cost("sdxl", height=512, width=512, steps=1, guidance=False)
    sd21 = pipeline_cost("sd21", steps=50)
    assert turbo.total < sd21.total < sdxl.total
    assert (sd21.height, sd21.width) == (768, 768)
    assert rel(sd21.components["unet"].params, 865.9e6) < 1e-3


def test_count_flops_counts_attention_on_real_cpu_like_on_meta():
    from diffusers import UNet2DConditionModel

    config = dict(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
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


def test_load_config_and_errors():
    assert set(ARCHITECTURES) == set(COMPONENTS)
    cfg = load_config("sd15", "unet")
    cfg["cross_attention_dim"] = -1
    assert load_config("sd15", "unet")["cross_attention_dim"] == 768
    for arch in ARCHITECTURES:
        for component in COMPONENTS[arch]:
            assert isinstance(load_config(arch, component), dict)
    with pytest.raises(ValueError, match=r"unknown architecture 'sd3'.*sd15.*pixart_alpha"):
        load_config("sd3", "unet")
    with pytest.raises(ValueError, match=r"unknown component 'unet'.*unet_stage1.*unet_stage2"):
        load_config("deepfloyd_if", "unet")
    with pytest.raises(ValueError, match=r"valid architectures are"):
        pipeline_cost("dalle3", steps=1)
    with pytest.raises(ValueError, match="multiple of 8"):
        pipeline_cost("sd15", height=500, steps=1)
    with pytest.raises(ValueError, match="non-negative integer"):
        pipeline_cost("sd15", steps=-1)
    with pytest.raises(TypeError):
        pipeline_cost("sd15", steps=1, guidance=(True, True))


def test_deepfloyd_if_two_stages():
    cost = pipeline_cost("deepfloyd_if")
    assert cost.steps == (100, 50) and cost.guidance == (True, True)
    assert list(cost.components) == ["text_encoder", "unet_stage1", "unet_stage2"]
    s1, s2, t5 = cost.components["unet_stage1"], cost.components["unet_stage2"], cost.components["text_encoder"]
    assert s1.calls == 200 and s2.calls == 100 and t5.calls == 1
    assert s1.input_shape[:2] == (64, 64) and s2.input_shape[:2] == (256, 256)
    assert rel(s1.params, 4.3e9) < 0.01 and rel(s2.params, 1.2e9) < 0.02 and rel(t5.params, 4.76e9) < 0.01
    assert "vae_decode" not in cost.components
    fewer = pipeline_cost("deepfloyd_if", steps=(100, 25), guidance=(True, False))
    assert fewer.components["unet_stage2"].calls == 25
    assert cost.total - fewer.total == s2.flops - 25 * s2.flops_per_call
    assert pipeline_cost("deepfloyd_if", steps=20).steps == (20, 50)
    with pytest.raises(ValueError, match="pair"):
        pipeline_cost("deepfloyd_if", steps=(1, 2, 3))


def test_pipeline_cost_reporting(sd15):
    text = str(sd15)
    assert text.startswith("sd15 512x512px, steps=50, guidance=True")
    assert "unet" in text and "vae_decode" in text
    d = sd15.to_dict()
    assert json.loads(json.dumps(d))["total_flops"] == sd15.total
    assert d["components"]["unet"]["calls"] == 100
    assert isinstance(sd15, PipelineCost)
    with pytest.raises(Exception):
        sd15.arch = "x"


def _tiny_configs():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig

    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8,
    )
    clip = CLIPTextConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                          max_position_embeddings=77, vocab_size=1000)
    return unet, vae, clip


def test_cost_from_pretrained_folder(tmp_path):
    unet, vae, clip = _tiny_configs()
    unet.save_config(tmp_path / "unet")
    vae.save_config(tmp_path / "vae")
    clip.architectures = ["CLIPTextModel"]
    clip.save_pretrained(tmp_path / "text_encoder")
    index = {
        "_class_name": "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "safety_checker": [None, None],
    }
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    cost = cost_from_pretrained(tmp_path, steps=4)
    assert cost.arch == "StableDiffusionPipeline"
    assert (cost.height, cost.width) == (16, 16)  # sample_size 8 x VAE factor 2 (two blocks)
    assert list(cost.components) == ["text_encoder", "unet", "vae_decode"]
    same = diffusion_cost_from_configs(
        dict(unet.config), dict(vae.config), [clip.to_dict()], height=16, width=16, steps=4, text_tokens=77,
    )
    assert cost.total == same.total > 0
    assert cost.components["unet"].calls == 8
    assert cost.components["unet"].input_shape[:2] == (8, 8)  # latent = pixels / VAE factor 2
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        cost_from_pretrained(tmp_path / "missing", steps=1)


def test_sdxl_style_text_time_configs():
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig

    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64, attention_head_dim=8, norm_num_groups=8, addition_embed_type="text_time",
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=32 + 6 * 8,
    )
    te1 = CLIPTextConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4).to_dict()
    te1["architectures"] = ["CLIPTextModel"]
    te2 = CLIPTextConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4,
                         projection_dim=32).to_dict()
    te2["architectures"] = ["CLIPTextModelWithProjection"]
    cost = diffusion_cost_from_configs(dict(unet.config), None, [te1, te2], height=8, width=8, steps=2)
    assert cost.components["unet"].input_shape == (8, 8, 77, 64, 32)
    assert list(cost.components) == ["text_encoder", "text_encoder_2", "unet"]


def test_component_cost_is_cached():
    cfg = load_config("sd15", "text_encoder")
    first = component_cost(cfg, text_tokens=77)
    second = component_cost(dict(cfg), text_tokens=77, calls=3)
    assert second.flops_per_call == first.flops_per_call and second.flops == 3 * first.flops
    with pytest.raises(ValueError, match="supported classes"):
        component_cost({"_class_name": "VQModel"}, height=8, width=8)
    with pytest.raises(ValueError, match="text_tokens is required"):
        component_cost(cfg)


def test_price_model():
    gpu = GPUPriceModel("toy", usd_per_hour=3.6, peak_flops_per_second=1e12, utilization=0.5)
    assert gpu.achieved_flops_per_second == 5e11
    assert gpu.seconds_per_image(1e12) == 2.0
    assert gpu.usd_per_image(1e12) == pytest.approx(0.002)
    assert DEFAULT_PRICE_MODEL.usd_per_hour == 2.99 and DEFAULT_PRICE_MODEL.utilization == 0.4
    assert DEFAULT_PRICE_MODEL.peak_flops_per_second == 989.4e12
    with pytest.raises(ValueError, match="utilization"):
        GPUPriceModel("bad", 1.0, 1e12, 0.0)
    with pytest.raises(ValueError, match="usd_per_hour"):
        GPUPriceModel("bad", -1.0, 1e12, 0.5)
    with pytest.raises(ValueError, match="flops"):
        gpu.usd_per_image(-1)


def test_counts_are_saved_on_disk_and_reused(tmp_path, monkeypatch):
    from costroute import costs

    monkeypatch.setenv("COSTROUTE_FLOPS_CACHE", "1")
    monkeypatch.setenv("COSTROUTE_DATA_HOME", str(tmp_path))
    config = {"_class_name": "CLIPTextModel", "hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4,
              "num_hidden_layers": 2, "vocab_size": 1000, "max_position_embeddings": 77}
    costs._count_component.cache_clear()
    fresh = component_cost(config, name="text_encoder", calls=1, text_tokens=77)
    saved = json.loads((tmp_path / "flop-counts.json").read_text())
    assert len(saved) == 1 and list(saved.values())[0][0] == fresh.flops_per_call
    # a later process reads the saved count instead of counting: poison it to prove the read
    key = next(iter(saved))
    saved[key] = [123, 456]
    (tmp_path / "flop-counts.json").write_text(json.dumps(saved))
    costs._count_component.cache_clear()
    assert component_cost(config, name="text_encoder", calls=1, text_tokens=77).flops_per_call == 123
    costs._count_component.cache_clear()
