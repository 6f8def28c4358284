"""Tests of costroute.costs._configs: the shipped architectures and config kinds."""

import pytest

from costroute.costs import ARCHITECTURES, COMPONENTS, DEFAULT_STEPS, NATIVE_RESOLUTION, load_config, pipeline_cost


def test_load_config_and_errors():
    assert set(ARCHITECTURES) == set(COMPONENTS) == set(NATIVE_RESOLUTION) == set(DEFAULT_STEPS)
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


def test_kind_of_configs():
    from costroute.costs._configs import _kind_of

    assert _kind_of(load_config("sd15", "unet")) == "UNet2DConditionModel"
    assert _kind_of(load_config("sd15", "vae")) == "AutoencoderKL"
    assert _kind_of(load_config("sd15", "text_encoder")) == "CLIPTextModel"
    assert _kind_of(load_config("sdxl", "text_encoder_2")) == "CLIPTextModelWithProjection"
    assert _kind_of(load_config("pixart_alpha", "text_encoder")) == "T5EncoderModel"
    assert _kind_of(load_config("pixart_alpha", "transformer")) in ("PixArtTransformer2DModel", "Transformer2DModel")
    # in-memory diffusers configs carry no class name: recognised by their keys
    unet = {k: v for k, v in load_config("sd15", "unet").items() if k != "_class_name"}
    assert _kind_of(unet) == "UNet2DConditionModel"
    with pytest.raises(ValueError, match=r"cannot cost a component of class 'VQModel'; supported classes are"):
        _kind_of({"_class_name": "VQModel"})
