"""SentenceEmbedder: real MiniLM embeddings, the per-text cache, no weights in pickles."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from costroute.features import SentenceEmbedder, _embedding, clear_embedding_cache, default_model_path

PROMPTS = ["a white wall", "a crowded park at dusk with a red kite", "a white wall", "a"]


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
    assert calls == [["a white wall", "a crowded park at dusk with a red kite", "a"]]
    np.testing.assert_array_equal(a[::-1], b)
    first.transform(PROMPTS + ["a new prompt"])
    assert calls[-1] == ["a new prompt"]


def test_cache_is_bounded(monkeypatch, embedder):
    clear_embedding_cache()
    monkeypatch.setattr(_embedding, "CACHE_MAX_ENTRIES", 2)
    emb = SentenceEmbedder().fit(["x"])
    emb.transform(["one", "two"])
    emb.transform(["one"])  # "one" is now the most recently used
    emb.transform(["three"])  # evicts the least recently used: "two"
    (cache,) = _embedding._CACHE.values()
    assert list(cache) == ["one", "three"]


def test_pickle_holds_no_model(embedder):
    blob = pickle.dumps(embedder)
    assert len(blob) < 10_000
    np.testing.assert_array_equal(pickle.loads(blob).transform(["a white wall"]), embedder.transform(["a white wall"]))


@pytest.mark.parametrize(
    "X, error, match",
    [
        ([], ValueError, "empty"),
        ("one prompt", TypeError, "wrap it in a list"),
        ([1.5], TypeError, r"X\[0\] must be a str"),
    ],
)
def test_bad_input(embedder, X, error, match):
    with pytest.raises(error, match=match):
        embedder.transform(X)


def test_bad_parameters():
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        SentenceEmbedder(batch_size=0).fit(["a"])
    with pytest.raises(TypeError, match="path or model id"):
        SentenceEmbedder(model=object()).fit(["a"])


@pytest.fixture(scope="module")
def raw_minilm(tmp_path_factory):
    """The packaged all-MiniLM-L6-v2 without its final Normalize layer: raw mean-pooled vectors.

    The packaged pipeline normalises by itself, so ``normalize`` only matters for models like
    this one; the folder links the packaged weights and lists the first two modules only.
    """
    source = Path(default_model_path())
    folder = tmp_path_factory.mktemp("minilm-raw")
    for entry in source.iterdir():
        if entry.name != "modules.json":
            (folder / entry.name).symlink_to(entry)
    modules = json.loads((source / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps([m for m in modules if not m["type"].endswith("Normalize")]))
    return str(folder)


@pytest.mark.parametrize("first", [True, False])
def test_the_cache_keeps_normalised_and_raw_embeddings_apart(raw_minilm, first):
    clear_embedding_cache(models=False)
    texts = ["a white wall", "a crowded park at dusk with a red kite", "a"]
    E = {}
    for normalize in (first, not first):  # whichever comes second must not be served the first's vectors
        E[normalize] = SentenceEmbedder(model=raw_minilm, normalize=normalize).fit(texts).transform(texts)
    np.testing.assert_allclose(np.linalg.norm(E[True], axis=1), 1.0, rtol=1e-5)
    raw_norms = np.linalg.norm(E[False], axis=1)
    assert np.all(np.abs(raw_norms - 1.0) > 0.05), raw_norms
    np.testing.assert_allclose(E[False] / raw_norms[:, None], E[True], atol=1e-5)


def test_the_packaged_model_returns_unit_vectors_either_way(embedder):
    raw = SentenceEmbedder(normalize=False).fit(["a"]).transform(["a white wall", "a red kite"])
    np.testing.assert_allclose(np.linalg.norm(raw, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(raw, embedder.transform(["a white wall", "a red kite"]), atol=1e-6)


def test_progress_bar_only_for_many_uncached_texts(capsys, embedder, monkeypatch):
    monkeypatch.setattr(_embedding, "PROGRESS_MIN_TEXTS", 24)  # the rule, not the default size, is tested
    clear_embedding_cache(models=False)
    many = [f"a photo of object number {i}" for i in range(_embedding.PROGRESS_MIN_TEXTS + 44)]
    SentenceEmbedder(progress=True).fit(many).transform(many)
    captured = capsys.readouterr()
    assert "embedding prompts" in captured.err and f"{len(many)}/{len(many)}" in captured.err
    assert captured.out == ""
    SentenceEmbedder(progress=True).fit(many).transform(many + ["one new text"])  # cached: no bar
    few = [f"a drawing of object number {i}" for i in range(_embedding.PROGRESS_MIN_TEXTS - 1)]
    SentenceEmbedder(progress=True).fit(few).transform(few)  # too few: no bar
    more = [f"a painting of object number {i}" for i in range(_embedding.PROGRESS_MIN_TEXTS)]
    quiet = SentenceEmbedder(progress=False).fit(more).transform(more)  # switched off
    assert capsys.readouterr().err == ""
    # chunked encoding for the bar gives the same vectors as one call
    clear_embedding_cache(models=False)
    np.testing.assert_allclose(SentenceEmbedder(progress=True).fit(more).transform(more), quiet, atol=1e-6)


def test_a_lone_surrogate_is_refused_with_its_position(embedder):
    with pytest.raises(ValueError, match=r"X\[1\] holds the lone surrogate '\\ud800' at character 6"):
        embedder.transform(["a cat on a wall", "a cat \ud800 on a wall"])


def test_progress_must_be_a_bool():
    with pytest.raises(TypeError, match="progress must be True or False"):
        SentenceEmbedder(progress="yes").fit(["a"])
