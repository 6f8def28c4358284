"""VQAScore of an image for its prompt: :class:`VQAScorer`."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._model import ModelScorer

__all__ = ["VQASCORE_QUESTION", "VQAScorer"]

#: The question of VQAScore (Lin et al., 2024); ``{prompt}`` is replaced by the prompt.
VQASCORE_QUESTION = 'Does this figure show "{prompt}"? Please answer yes or no.'


class VQAScorer(ModelScorer):
    """VQAScore: the probability that a vision-language model answers "Yes" to "does this image show the prompt?".

    For each image the question ``question`` (VQAScore's ``Does this figure show
    "{prompt}"? Please answer yes or no.``) is put to an image-text-to-text model, and the
    score is the softmax probability of the first token of ``answer`` ("Yes") over the whole
    vocabulary at the first answer position, read from **one forward pass** (no generation
    loop): a number in [0, 1], higher is better (Lin et al., "Evaluating Text-to-Visual
    Generation with Image-to-Text Generation", 2024).

    The class is generic over transformers' ``AutoModelForImageTextToText`` and
    ``AutoProcessor``: the text fed to the processor is the processor's chat template
    applied to one user turn holding the image and the question (with the generation
    prompt added), or ``prompt_template`` when given. Batches are padded on the right and
    the next-token distribution is read at each row's last real token, so a row's score does
    not depend on the others in its batch. The default model is LLaVA-1.5 7B
    (``llava-hf/llava-1.5-7b-hf``), whose FLOPs are counted from its shipped published
    config: 8.91 TFLOPs per image at 576 image tokens + 64 text tokens.

    Parameters
    ----------
    model : str or path-like, default="llava-hf/llava-1.5-7b-hf"
        Hub id or local folder of an image-text-to-text model.
    processor : str or path-like, optional
        Hub id or folder of its processor; default ``model``.
    question : str, default=VQASCORE_QUESTION
        The question; must contain ``{prompt}``, replaced by each prompt verbatim.
    answer : str, default="Yes"
        The answer whose first token's probability is the score.
    prompt_template : str, optional
        The full text fed to the processor, with ``{question}`` where the question goes and
        the model's image placeholder (for LLaVA-1.5: ``"USER: <image>\\n{question} ASSISTANT:"``).
        Default: the processor's chat template (an error at scoring time if it has none).
    name : str, optional
        Default ``"vqascore:<model's last path component>"``.
    batch_size : int, default=8
    device, dtype, cost, cost_unit, price_model, load_kwargs
        As for :class:`~costroute.scoring.CLIPScorer`. The counted cost assumes
        :data:`~costroute.scoring.VQA_TEXT_TOKENS` text tokens per image and is available for
        LLaVA-style models (``model_type="llava"``); give ``cost=`` for other models.

    Examples
    --------
    >>> from costroute.scoring import VQAScorer
    >>> vqa = VQAScorer()                                   # LLaVA-1.5 7B, nothing loaded yet
    >>> round(vqa.cost / 1e12, 2)                           # doctest: +SKIP
    8.91
    >>> vqa.score(["a red bicycle"], [image])               # doctest: +SKIP
    array([0.83])
    """

    _default_batch_size = 8
    _prefix = "vqascore"

    def __init__(
        self,
        model: str | os.PathLike = "llava-hf/llava-1.5-7b-hf",
        *,
        processor: str | os.PathLike | None = None,
        question: str = VQASCORE_QUESTION,
        answer: str = "Yes",
        prompt_template: str | None = None,
        name: str | None = None,
        batch_size: int | None = None,
        device: Any = "auto",
        dtype: Any = "auto",
        cost: float | None = None,
        cost_unit: str = "flops",
        price_model: Any = None,
        load_kwargs: Mapping[str, Any] | None = None,
    ):
        if not isinstance(question, str) or "{prompt}" not in question:
            raise ValueError(f"question must be a str containing '{{prompt}}', got {question!r}")
        if not isinstance(answer, str) or not answer.strip():
            raise ValueError(
                f"answer must be a non-empty str (the answer whose probability is the score), got {answer!r}"
            )
        if prompt_template is not None and (
            not isinstance(prompt_template, str) or "{question}" not in prompt_template
        ):
            raise ValueError(
                f"prompt_template must be None or a str containing '{{question}}', got {prompt_template!r}"
            )
        self.question = question
        self.answer = answer
        self.prompt_template = prompt_template
        super().__init__(
            model,
            processor=processor,
            name=name,
            batch_size=batch_size,
            device=device,
            dtype=dtype,
            cost=cost,
            cost_unit=cost_unit,
            price_model=price_model,
            load_kwargs=load_kwargs,
        )

    def _load_model(self, model: str, processor: str, dtype: str, device: str) -> tuple[Any, Any]:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from ._model import dtype_kwargs

        proc = self._from_pretrained(AutoProcessor, processor)
        if getattr(proc, "tokenizer", None) is None:
            raise ValueError(f"processor {processor!r} has no tokenizer, got a {type(proc).__name__}")
        proc.tokenizer.padding_side = "right"  # real tokens first: a row's last real token is its answer position
        net = self._from_pretrained(AutoModelForImageTextToText, model, **dtype_kwargs(dtype), **self.load_kwargs)
        return net.to(device).eval(), proc

    def texts(self, prompts: list[str], processor: Any) -> list[str]:
        """The texts fed to the processor for ``prompts``: the question in the chat template (or ``prompt_template``).

        Parameters
        ----------
        prompts : list of str
        processor : transformers processor
            The loaded processor (``self.load()[1]``).

        Returns
        -------
        list of str
        """
        questions = [self.question.replace("{prompt}", prompt) for prompt in prompts]
        if self.prompt_template is not None:
            return [self.prompt_template.replace("{question}", q) for q in questions]
        if not getattr(processor, "chat_template", None):
            raise ValueError(
                f"the processor of scorer {self.name!r} has no chat template; pass prompt_template= with "
                "'{question}' and the model's image placeholder, e.g. 'USER: <image>\\n{question} ASSISTANT:'"
            )
        return [
            processor.apply_chat_template(
                [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}],
                add_generation_prompt=True,
                tokenize=False,
            )
            for q in questions
        ]

    def answer_token_id(self, processor: Any) -> int:
        """Vocabulary id of the first token of ``answer`` (without special tokens)."""
        ids = processor.tokenizer(self.answer, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"answer {self.answer!r} of scorer {self.name!r} encodes to no token")
        return int(ids[0])

    def _score_batch(self, prompts: list[str], images: list) -> np.ndarray:
        import torch

        net, proc = self.load()
        inputs = proc(images=images, text=self.texts(prompts, proc), return_tensors="pt", padding=True)
        inputs = self._to_device(inputs, net)
        mask = inputs["attention_mask"]
        # the last real token of each row (right padding: real tokens first)
        last = mask.shape[1] - 1 - torch.flip(mask, dims=[1]).to(torch.int64).argmax(dim=1)
        kwargs: dict[str, Any] = {}
        keep = None
        if "logits_to_keep" in inspect.signature(net.forward).parameters:
            keep = torch.unique(last)  # sorted
            kwargs["logits_to_keep"] = keep
        with torch.no_grad():
            logits = net(**inputs, **kwargs).logits
            rows = torch.arange(logits.shape[0], device=logits.device)
            if keep is not None and logits.shape[1] == keep.numel():
                column = torch.searchsorted(keep, last)
            else:
                column = last
            probs = torch.softmax(logits[rows, column].float(), dim=-1)
            values = probs[:, self.answer_token_id(proc)]
        return values.cpu().numpy().astype(float)

    def _params(self) -> dict[str, Any]:
        params = super()._params()
        params.update(question=self.question, answer=self.answer)
        if self.prompt_template is not None:
            params["prompt_template"] = self.prompt_template
        return params
