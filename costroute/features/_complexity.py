"""Transparent prompt statistics: how much a prompt asks of a generator."""

from __future__ import annotations

import re

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._validation import check_prompts

_WORD = re.compile(r"[A-Za-z0-9']+(?:-[A-Za-z0-9']+)*")
_NUMBER_WORDS = {
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "twenty",
    "hundred",
    "thousand",
    "dozen",
    "single",
    "pair",
    "couple",
    "twin",
    "twins",
    "triple",
    "first",
    "second",
    "third",
}
_QUANTIFIERS = {
    "several",
    "many",
    "few",
    "multiple",
    "numerous",
    "some",
    "both",
    "each",
    "every",
    "all",
    "none",
    "no",
    "only",
    "most",
    "various",
    "lots",
    "group",
    "crowd",
    "row",
    "stack",
    "pile",
}
_COLOURS = {
    "red",
    "green",
    "blue",
    "yellow",
    "orange",
    "purple",
    "violet",
    "pink",
    "brown",
    "black",
    "white",
    "gray",
    "grey",
    "gold",
    "golden",
    "silver",
    "beige",
    "cyan",
    "magenta",
    "turquoise",
    "teal",
    "maroon",
    "navy",
    "crimson",
    "scarlet",
    "emerald",
    "indigo",
    "lavender",
    "ivory",
    "bronze",
    "copper",
    "colorful",
    "colourful",
    "multicolored",
    "rainbow",
}
_SPATIAL_WORDS = {
    "left",
    "right",
    "above",
    "below",
    "under",
    "underneath",
    "beneath",
    "behind",
    "beside",
    "between",
    "inside",
    "outside",
    "near",
    "atop",
    "over",
    "across",
    "around",
    "against",
    "among",
    "along",
    "opposite",
    "facing",
    "top",
    "bottom",
    "middle",
    "center",
    "centre",
    "foreground",
    "background",
    "corner",
    "within",
    "into",
    "onto",
    "through",
}
_SPATIAL_PHRASES = ("in front of", "next to", "on top of", "close to", "far from", "on the left", "on the right")
_NEGATIONS = {"no", "not", "without", "never", "none", "nobody", "nothing", "neither", "nor", "lacking", "absent"}
_SUPERLATIVES = {
    "best",
    "worst",
    "most",
    "least",
    "largest",
    "smallest",
    "tallest",
    "shortest",
    "biggest",
    "longest",
    "highest",
    "lowest",
    "oldest",
    "youngest",
    "brightest",
    "darkest",
    "fastest",
    "slowest",
    "closest",
    "farthest",
    "furthest",
    "heaviest",
    "lightest",
    "widest",
    "thickest",
}
_COMPARATIVES = {
    "than",
    "more",
    "less",
    "fewer",
    "same",
    "different",
    "similar",
    "larger",
    "smaller",
    "taller",
    "shorter",
    "bigger",
    "longer",
    "higher",
    "lower",
    "equal",
    "identical",
    "unlike",
}
_CLAUSE_MARKERS = {
    "and",
    "while",
    "which",
    "that",
    "who",
    "whose",
    "where",
    "when",
    "as",
    "but",
    "whereas",
    "because",
    "although",
    "with",
}
_STYLE = {
    "photo",
    "photograph",
    "photography",
    "photorealistic",
    "realistic",
    "hyperrealistic",
    "painting",
    "oil",
    "watercolor",
    "watercolour",
    "sketch",
    "drawing",
    "illustration",
    "cartoon",
    "anime",
    "render",
    "rendered",
    "octane",
    "unreal",
    "cgi",
    "3d",
    "digital",
    "concept",
    "artstation",
    "cinematic",
    "lighting",
    "detailed",
    "intricate",
    "4k",
    "8k",
    "hd",
    "hdr",
    "masterpiece",
    "style",
    "portrait",
    "bokeh",
    "vibrant",
    "surreal",
    "pixel",
    "vector",
    "minimalist",
    "lowpoly",
    "trending",
    "sharp",
    "focus",
    "dramatic",
    "studio",
    "matte",
    "impressionist",
    "baroque",
}
_TEXT_MARKERS = {
    "text",
    "sign",
    "says",
    "saying",
    "reads",
    "reading",
    "written",
    "words",
    "letters",
    "logo",
    "title",
    "caption",
    "label",
    "banner",
    "poster",
    "typography",
    "font",
}
_SENTENCE_END = re.compile(r"[.!?]+(?:\s+|$)")
# single quotes must open and close at word boundaries, so possessives ("the cat's toy and
# the dog's bone") are not quoted text
_QUOTED = re.compile(r"\"[^\"]+\"|“[^”]+”|(?<!\w)'[^']{2,}'(?!\w)")

FEATURE_NAMES = (
    "n_chars",
    "n_words",
    "mean_word_length",
    "n_commas",
    "n_clause_markers",
    "n_numerals",
    "n_quantifiers",
    "n_colour_words",
    "n_spatial_relations",
    "n_negations",
    "n_comparatives",
    "n_quoted_text",
    "n_text_markers",
    "n_proper_names",
    "n_style_modifiers",
    "n_gerunds",
    "n_distinct_words",
    "n_sentences",
)


def _spatial_relations(lower: list[str], low_text: str) -> int:
    """Spatial words plus multi-word relations, each relation counted once."""
    count = sum(w in _SPATIAL_WORDS for w in lower)
    for phrase in _SPATIAL_PHRASES:
        hits = low_text.count(f" {phrase} ")
        # "on top of" is one relation: do not also count its single spatial word ("top")
        count += hits * (1 - sum(w in _SPATIAL_WORDS for w in phrase.split()))
    return count


def _stats(prompt: str) -> list[float]:
    words = _WORD.findall(prompt)
    lower = [w.lower() for w in words]
    low_text = " " + " ".join(lower) + " "
    n_words = len(words)
    sentence_starts = {0}
    previous_end = 0
    for i, m in enumerate(_WORD.finditer(prompt)):
        if i and re.search(r"[.!?:;]", prompt[previous_end : m.start()]):
            sentence_starts.add(i)
        previous_end = m.end()
    proper = sum(
        1 for i, w in enumerate(words) if i not in sentence_starts and w[:1].isupper() and w.lower() not in {"i"}
    )
    return [
        float(len(prompt)),
        float(n_words),
        float(np.mean([len(w) for w in words])) if words else 0.0,
        float(prompt.count(",")),
        float(sum(w in _CLAUSE_MARKERS for w in lower) + prompt.count(";")),
        float(sum(w.isdigit() or w in _NUMBER_WORDS for w in lower)),
        float(sum(w in _QUANTIFIERS for w in lower)),
        float(sum(w in _COLOURS for w in lower)),
        float(_spatial_relations(lower, low_text)),
        float(sum(w in _NEGATIONS or w.endswith("n't") for w in lower)),
        float(sum(w in _COMPARATIVES or w in _SUPERLATIVES for w in lower)),
        float(len(_QUOTED.findall(prompt))),
        float(sum(w in _TEXT_MARKERS for w in lower)),
        float(proper),
        float(sum(w in _STYLE for w in lower) + low_text.count(" by ")),
        float(sum(w.endswith("ing") and len(w) > 4 for w in lower)),
        float(len(set(lower))),
        float(sum(1 for part in _SENTENCE_END.split(prompt) if part.strip())),
    ]


class PromptComplexity(TransformerMixin, BaseEstimator):
    """Transparent statistics of a prompt's demands, one row per prompt.

    Counts words, commas and clause markers, numerals and quantifiers, colour words,
    spatial relations, negations, comparisons, quoted text and text-rendering cues, proper
    names, style modifiers, gerunds (actions) and sentences. Stateless: ``fit`` only
    validates. Scale the output (e.g. ``StandardScaler``) before distance-based models.

    Examples
    --------
    >>> from costroute.features import PromptComplexity
    >>> pc = PromptComplexity().fit(["a white wall"])
    >>> row = pc.transform(["two red kites left of a tree"])[0]
    >>> {name: int(v) for name, v in zip(pc.get_feature_names_out(), row) if name.startswith("n_") and v}
    {'n_chars': 28, 'n_words': 7, 'n_numerals': 1, 'n_colour_words': 1, 'n_spatial_relations': 1, 'n_distinct_words': 7, 'n_sentences': 1}
    """

    def fit(self, X, y=None):
        """Validate ``X``; nothing is learned."""
        check_prompts(X)
        self.n_features_out_ = len(FEATURE_NAMES)
        return self

    def transform(self, X) -> np.ndarray:
        """Return an (n, 18) float array of prompt statistics."""
        prompts = check_prompts(X)
        return np.array([_stats(p) for p in prompts], dtype=float).reshape(len(prompts), len(FEATURE_NAMES))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """The statistic names, in column order."""
        return np.array(FEATURE_NAMES, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags
