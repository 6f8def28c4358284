"""SentenceEmbedder: real MiniLM embeddings, the per-text cache, no weights in pickles."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from costroute.features import SentenceEmbedder, clear_embedding_cache
from costroute.features import _embedding

PROMPTS = ["a white wall", "a crowded park at dusk with a red kite", "a white wall", ""]


@pytest.fixture(scope="module")
def embedder():
    return SentenceEmbedder().fit(PROMPTS)


def test_real_embeddings_are_normalised_and_semantic(embedder):
    E = embedder.transform(["a red apple on a table", "an apple, red, lying on a table", "a rocket launch at night"])
    assert E.shape == (3, 384) and E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, rtol=1e-5)
    assert E[0] @ E[1] > E[0] @ E[2] + 0.3
    assert embedder.get_feature_names_out()[:2].tolist() == ["embedding0", "embedding1"]


def test_duplicates_and_empty_prompt_are_embedded_in_place(embedder):
    E = embedder.transform(PROMPTS)
    assert E.shape == (4, 384)
    np.testing.assert_array_equal(E[0], E[2])
    assert np.isfinite(E[3]).all()


def test_clones_share_the_cache_and_encode_each_text_once(monkeypatch, embedder):
    clear_embedding_cache()
    calls = []
    first = SentenceEmbedder().fit(PROMPTS)
    encoder = _embedding._load_model(first.model_, "cpu")
    original = encoder.encode

    def counting_encode(texts, **kwargs):
        calls.append(list(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(encoder, "encode", counting_encode)
    a = first.transform(PROMPTS)
    b = clone(first).fit(PROMPTS).transform(list(reversed(PROMPTS)))
    assert calls == [["a white wall", "a crowded park at dusk with a red kite", ""]]
    np.testing.assert_array_equal(a[::-1], b)
    first.transform(PROMPTS + ["a new prompt"])
    assert calls[-1] == ["a new prompt"]


def test_cache_is_bounded(monkeypatch, embedder):
    clear_embedding_cache()
    monkeypatch.setattr(_embedding, "CACHE_MAX_ENTRIES", 2)
    emb = SentenceEmbedder().fit(["x"])
    emb.transform(["one", "two"])
    emb.transform(["one"])            # "one" is now the most recently used
    emb.transform(["three"])          # evicts the least recently used: "two"
    (cache,) = _embedding._CACHE.values()
    assert list(cache) == ["one", "three"]


def test_pickle_holds_no_model(embedder):
    blob = pickle.dumps(embedder)
    assert len(blob) < 10_000
    np.testing.assert_array_equal(pickle.loads(blob).transform(["a white wall"]), embedder.transform(["a white wall"]))


@pytest.mark.parametrize(
    "X, error, match",
    [([], ValueError, "empty"), ("one prompt", TypeError, "wrap it in a list"), ([1.5], TypeError, r"X\[0\] must be a str")],
)
def test_bad_input(embedder, X, error, match):
    with pytest.raises(error, match=match):
        embedder.transform(X)


def test_bad_parameters():
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        SentenceEmbedder(batch_size=0).fit(["a"])
    with pytest.raises(TypeError, match="path or model id"):
        SentenceEmbedder(model=object()).fit(["a"])
