"""VQAScorer on a tiny random LLaVA-style model saved to a folder."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from costroute.costs import count_flops  # noqa: E402
from costroute.scoring import VQA_TEXT_TOKENS, VQASCORE_QUESTION, VQAScorer  # noqa: E402

TEMPLATE = "USER: <image>\n{question} ASSISTANT:"


def manual_yes_probability(folder, prompts, images):
    """P(first token of "Yes") after the LLaVA-1.5 prompt, one unpadded pair at a time."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    yes = processor.tokenizer("Yes", add_special_tokens=False)["input_ids"][0]
    out = []
    for prompt, image in zip(prompts, images):
        text = TEMPLATE.replace("{question}", VQASCORE_QUESTION.replace("{prompt}", prompt))
        inputs = processor(images=[image.convert("RGB")], text=[text], return_tensors="pt")
        with torch.no_grad():
            logits = model(**inputs).logits[0, -1]
        out.append(float(torch.softmax(logits, dim=-1)[yes]))
    return np.array(out)


def test_yes_probability_equals_manual_computation(tiny_vlm, prompts, images):
    expected = manual_yes_probability(tiny_vlm, prompts, images)
    scores = VQAScorer(tiny_vlm).score(prompts, images, progress=False)
    assert scores.shape == (len(prompts),) and np.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-7)
    assert len(set(np.round(scores, 9))) == len(scores)  # every pair gets its own probability


def test_prompt_template_equals_chat_template(tiny_vlm, prompts, images):
    chat = VQAScorer(tiny_vlm)
    templated = VQAScorer(tiny_vlm, prompt_template=TEMPLATE)
    _, processor = chat.load()
    assert chat.texts(prompts, processor) == templated.texts(prompts, processor)
    assert chat.texts(["a {b} c"], processor) == [
        'USER: <image>\nDoes this figure show "a {b} c"? Please answer yes or no. ASSISTANT:'
    ]
    np.testing.assert_allclose(
        templated.score(prompts, images, progress=False), chat.score(prompts, images, progress=False), rtol=1e-6
    )


@pytest.mark.parametrize("batch_size", [1, 2, 4])
def test_batch_size_and_padding_do_not_change_scores(tiny_vlm, prompts, images, batch_size):
    """Prompts of very different lengths share a batch: right padding must not move the answer position."""
    scorer = VQAScorer(tiny_vlm)
    reference = scorer.score(prompts, images, batch_size=len(prompts), progress=False)
    np.testing.assert_allclose(
        scorer.score(prompts, images, batch_size=batch_size, progress=False), reference, rtol=1e-5, atol=1e-8
    )


def test_deterministic_and_in_order(tiny_vlm, prompts, images):
    scorer = VQAScorer(tiny_vlm)
    first = scorer.score(prompts, images, progress=False)
    np.testing.assert_array_equal(scorer.score(prompts, images, progress=False), first)
    order = [5, 2, 0, 4, 1, 3]
    shuffled = scorer.score([prompts[i] for i in order], [images[i] for i in order], progress=False)
    np.testing.assert_allclose(shuffled, first[order], rtol=1e-5)


def test_other_question_and_answer(tiny_vlm, prompts, images):
    """The answer token and the question are parameters: "No" reads another vocabulary entry."""
    yes = VQAScorer(tiny_vlm).score(prompts[:3], images[:3], progress=False)
    no = VQAScorer(tiny_vlm, answer="No").score(prompts[:3], images[:3], progress=False)
    assert not np.allclose(yes, no)
    scorer = VQAScorer(tiny_vlm, answer="No")
    _, processor = scorer.load()
    assert scorer.answer_token_id(processor) == processor.tokenizer.convert_tokens_to_ids("N")


def test_cost_counts_vision_language_and_one_head_position(tiny_vlm):
    """The meta-device count equals the real model's forward on CPU at 16 image + 64 text tokens."""
    from transformers import AutoModelForImageTextToText

    scorer = VQAScorer(tiny_vlm)
    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm, local_files_only=True).eval()
    image_token = model.config.image_token_index
    ids = torch.full((1, 16 + VQA_TEXT_TOKENS), 10, dtype=torch.long)
    ids[0, 3:19] = image_token  # 16 image tokens: (32 px / 8 px patches)^2
    real = count_flops(model, input_ids=ids, pixel_values=torch.zeros(1, 3, 32, 32), logits_to_keep=1)
    assert scorer.cost == real
    breakdown = scorer.cost_breakdown()
    assert breakdown.input_shape == {"image_size": 32, "image_tokens": 16, "text_tokens": VQA_TEXT_TOKENS}
    assert list(breakdown.parts) == ["vision", "language", "head"] and breakdown.total == real


def test_lazy_loading_and_unload(tiny_vlm, prompts, images, fresh_pipeline_cache):
    scorer = VQAScorer(tiny_vlm)
    assert scorer.cost > 0 and len(fresh_pipeline_cache) == 0
    scorer.score(prompts[:1], images[:1], progress=False)
    assert scorer.loaded
    scorer.unload()
    assert len(fresh_pipeline_cache) == 0


def test_bad_arguments_raise_clear_errors(tiny_vlm, prompts, images, tmp_path):
    with pytest.raises(ValueError, match=r"question must be a str containing '\{prompt\}'"):
        VQAScorer(tiny_vlm, question="Is this good?")
    with pytest.raises(ValueError, match="answer must be a non-empty str"):
        VQAScorer(tiny_vlm, answer=" ")
    with pytest.raises(ValueError, match=r"prompt_template must be None or a str containing '\{question\}'"):
        VQAScorer(tiny_vlm, prompt_template="USER: <image> ASSISTANT:")
    scorer = VQAScorer(tiny_vlm)
    with pytest.raises(ValueError, match="got 3 prompts but 2 images"):
        scorer.score(prompts[:3], images[:2])
    with pytest.raises(TypeError, match=r"images\[0\] must be a PIL image"):
        scorer.score(prompts[:1], [b"\x89PNG"])
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        scorer.score(prompts, images, batch_size=0)
    with pytest.raises(ValueError, match="device must be"):
        VQAScorer(tiny_vlm, device="gpu")


def test_processor_without_chat_template_needs_prompt_template(tiny_vlm, prompts, images, tmp_path):
    import json
    import shutil

    folder = tmp_path / "no-template"
    shutil.copytree(tiny_vlm, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = folder / "processor_config.json"
    data = json.loads(config.read_text())
    data.pop("chat_template", None)
    config.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="has no chat template; pass prompt_template="):
        VQAScorer(folder).score(prompts[:1], images[:1], progress=False)
    expected = VQAScorer(tiny_vlm).score(prompts[:2], images[:2], progress=False)
    np.testing.assert_allclose(
        VQAScorer(folder, prompt_template=TEMPLATE).score(prompts[:2], images[:2], progress=False), expected, rtol=1e-6
    )


def test_default_is_llava_and_costs_without_download():
    scorer = VQAScorer()
    assert scorer.model == "llava-hf/llava-1.5-7b-hf" and scorer.name == "vqascore:llava-1.5-7b-hf"
    assert scorer.cost == pytest.approx(8.910e12, rel=1e-3)
