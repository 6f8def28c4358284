"""Tests of costroute.costs._pipeline: per-image FLOPs of whole pipelines."""

import json

import pytest

torch = pytest.importorskip("torch")

from costroute.costs import (  # noqa: E402
    PipelineCost,
    cost_from_pretrained,
    diffusion_cost_from_configs,
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
    fixed = sd15.components["vae_decode"].flops + sd15.components["text_encoder"].flops
    for s in (1, 2, 10, 25):
        assert pipeline_cost("sd15", steps=s).total == fixed + 2 * per_call * s


def test_cost_order(sdxl):
    turbo = pipeline_cost("sdxl", height=512, width=512, steps=1, guidance=False)
    sd21 = pipeline_cost("sd21", steps=50)
    assert turbo.total < sd21.total < sdxl.total
    assert (sd21.height, sd21.width) == (768, 768)
    assert rel(sd21.components["unet"].params, 865.9e6) < 1e-3


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
    with pytest.raises(AttributeError):  # a frozen dataclass
        sd15.arch = "x"


def _tiny_configs():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig

    unet = UNet2DConditionModel(
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
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
    )
    clip = CLIPTextConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        vocab_size=1000,
    )
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
        dict(unet.config),
        dict(vae.config),
        [clip.to_dict()],
        height=16,
        width=16,
        steps=4,
        text_tokens=77,
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
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=8,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=32 + 6 * 8,
    )
    te1 = CLIPTextConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4).to_dict()
    te1["architectures"] = ["CLIPTextModel"]
    te2 = CLIPTextConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4, projection_dim=32
    ).to_dict()
    te2["architectures"] = ["CLIPTextModelWithProjection"]
    cost = diffusion_cost_from_configs(dict(unet.config), None, [te1, te2], height=8, width=8, steps=2)
    assert cost.components["unet"].input_shape == (8, 8, 77, 64, 32)
    assert list(cost.components) == ["text_encoder", "text_encoder_2", "unet"]


def test_totals_are_exactly_the_recorded_ones(sd15, sdxl):
    """Bit-identical totals (recorded before the counting code was split into modules)."""
    assert sd15.total == 82855161565184
    assert sdxl.total == 686705194012672
    turbo = pipeline_cost("sdxl", height=512, width=512, steps=1, guidance=False)
    assert turbo.total == 4214459305984
    assert turbo.components["unet"].flops_per_call == 1588778762240
    assert pipeline_cost("sd15", steps=10, guidance=False).total == 10560551849984


def test_settings_errors():
    with pytest.raises(ValueError, match="multiple of 8"):
        pipeline_cost("sd15", height=500, steps=1)
    with pytest.raises(TypeError, match="guidance must be a bool"):
        pipeline_cost("sd15", steps=1, guidance=(True, True))
    with pytest.raises(TypeError, match="progress must be True or False"):
        pipeline_cost("sd15", steps=1, progress="no")


@pytest.mark.parametrize("steps", [0, -1, 2.5, 3.0, True, "4", None])
def test_steps_below_one_or_not_an_integer_are_rejected(steps):
    """A pipeline with no denoising step makes no image: steps < 1 is an error, as in the generators."""
    if steps is not None:  # None means the default for pipeline_cost
        with pytest.raises(ValueError, match=rf"steps must be a positive integer.*got {steps!r}"):
            pipeline_cost("sd15", steps=steps)
        with pytest.raises(ValueError, match=r"steps must be a positive integer"):
            pipeline_cost("sdxl", height=512, width=512, steps=steps, guidance=False)
        with pytest.raises(ValueError, match=r"steps must be a positive integer"):
            pipeline_cost("pixart_alpha", steps=steps)
    unet, vae, clip = _tiny_configs()
    with pytest.raises(ValueError, match=r"steps must be a positive integer"):
        diffusion_cost_from_configs(
            dict(unet.config), dict(vae.config), [clip.to_dict()], height=16, width=16, steps=steps
        )


@pytest.mark.parametrize("steps", [0, (0, 50), (100, 0), (-1, 50), (1.5, 50)])
def test_deepfloyd_if_steps_below_one_are_rejected(steps):
    with pytest.raises(ValueError, match=r"steps for deepfloyd_if stage (I|II) must be a positive integer"):
        pipeline_cost("deepfloyd_if", steps=steps)


def test_cost_from_pretrained_rejects_zero_steps(tmp_path):
    with pytest.raises(ValueError, match=r"steps must be a positive integer.*got 0"):
        cost_from_pretrained(tmp_path, steps=0)


def test_one_step_is_the_least():
    one = pipeline_cost("sdxl", height=512, width=512, steps=1, guidance=False)
    assert one.components["unet"].calls == 1 and one.steps == 1


# --- progress -------------------------------------------------------------------------


@pytest.fixture
def empty_memory():
    """Forget the counts kept in this process (restored afterwards), so counting really happens."""
    from costroute.costs import _counting

    kept = dict(_counting._memory)
    _counting._memory.clear()
    yield
    _counting._memory.clear()
    _counting._memory.update(kept)


def _tiny_pipeline_configs():
    unet, vae, clip = _tiny_configs()
    clip = clip.to_dict()
    clip["architectures"] = ["CLIPTextModel"]
    return dict(unet.config), dict(vae.config), clip


def test_progress_bar_when_several_components_are_counted(capsys, empty_memory):
    unet, vae, clip = _tiny_pipeline_configs()
    cold = diffusion_cost_from_configs(unet, vae, [clip], height=16, width=16, steps=2, arch="tiny")
    err = capsys.readouterr().err
    assert "counting FLOPs of tiny" in err and "3/3" in err
    # everything is cached now: no bar
    warm = diffusion_cost_from_configs(unet, vae, [clip], height=16, width=16, steps=2, arch="tiny")
    assert capsys.readouterr().err == ""
    assert warm == cold
    # one new count (the UNet at another latent size; the text encoder is cached): no bar
    other = diffusion_cost_from_configs(unet, None, [clip], height=16, width=16, steps=2, arch="tiny")
    assert capsys.readouterr().err == ""
    assert other.components["unet"].input_shape[:2] == (16, 16) and "vae_decode" not in other.components


def test_progress_false_shows_nothing(capsys, empty_memory):
    unet, vae, clip = _tiny_pipeline_configs()
    quiet = diffusion_cost_from_configs(unet, vae, [clip], height=16, width=16, steps=2, progress=False)
    assert capsys.readouterr().err == ""
    assert quiet.total > 0
