"""The costroute command: route a prompts file, print costs, clear errors and exit codes."""

import io
import re
import subprocess
import sys

import pandas as pd
import pytest

import costroute
from costroute.cli import main
from costroute.cli._prompt_files import read_prompts as _read_prompts

ROUTE_FAST = ["--features", "complexity", "--quality-model", "ridge"]
GENERATORS = {"DeepFloyd_I_XL_v1", "SDXL_Base", "SDXL_Turbo", "SDXL_2_1"}


def routed_frame(out):
    return pd.read_csv(io.StringIO(out), keep_default_na=False)


def test_route_a_prompts_file(tmp_path, capsys):
    path = tmp_path / "prompts.txt"
    path.write_text("a white wall\n\n  \t\nthree red kites left of two trees at dusk\n\n")
    assert main(["route", str(path), *ROUTE_FAST, "--budget", "0.3"]) == 0
    out, err = capsys.readouterr()
    frame = routed_frame(out)
    # blank and whitespace-only lines are skipped alike, wherever they are
    assert frame["prompt"].tolist() == ["a white wall", "three red kites left of two trees at dusk"]
    assert set(frame["generator"]) <= GENERATORS
    assert "predicted_SDXL_Turbo" in frame.columns
    assert frame["normalized_cost"].mean() <= 0.3 + 1e-9
    # the long steps say what they are doing, then the summary
    assert "loading the genai-bench ratings" in err and "fitting the router on 527 rated prompts" in err
    assert "2 prompts routed" in err


def test_quiet_silences_stderr_but_keeps_warnings(tmp_path, capsys):
    path = tmp_path / "prompts.txt"
    path.write_text("a white wall\na red kite\n")
    assert main(["route", str(path), *ROUTE_FAST, "-q"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and len(routed_frame(out)) == 2
    assert main(["route", str(path), *ROUTE_FAST, "--quiet", "--budget", "0.001"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "costroute route: warning: budget 0.001 is below the cheapest generator's normalised cost "
        "0.0047595; every prompt is routed to the cheapest generator"
    ]
    assert set(routed_frame(out)["generator"]) == {"SDXL_Turbo"}


def test_crlf_bom_and_penalty_floor_under_budget(tmp_path, capsys):
    path = tmp_path / "windows.txt"
    path.write_bytes("\ufeffa white wall\r\na red kite\r\n".encode("utf-8"))
    args = ["route", str(path), *ROUTE_FAST]
    assert main(args + ["--budget", "1.0", "--cost-penalty", "100"]) == 0
    out, err = capsys.readouterr()
    frame = pd.read_csv(io.StringIO(out))
    assert frame["prompt"].tolist() == ["a white wall", "a red kite"]
    assert set(frame["generator"]) == {"SDXL_Turbo"}  # the penalty is a floor under the budget
    assert "cost_penalty=100" in err


# ---------------------------------------------------------------- CSV input
def test_csv_file_with_header_quotes_and_multiline_fields(tmp_path, capsys):
    path = tmp_path / "prompts.csv"
    path.write_text(
        "id,prompt,category\n"
        '1,"a red kite, a blue kite",kites\n'
        '2,"a poem on a sign:\nroses are red",text\n'
        "\n"
        "   \n"
        '3,"she said ""hi""",quotes\n'
    )
    assert main(["route", str(path), *ROUTE_FAST, "-q"]) == 0
    frame = routed_frame(capsys.readouterr().out)
    assert frame["prompt"].tolist() == ["a red kite, a blue kite", "a poem on a sign:\nroses are red", 'she said "hi"']


@pytest.mark.parametrize("field, what", [("", "empty"), ('"  "', "whitespace only")])
def test_csv_row_with_an_empty_prompt_field_names_its_line(tmp_path, capsys, field, what):
    path = tmp_path / "prompts.csv"
    path.write_text(f"id,prompt\n1,a red kite\n\n2,{field}\n")
    assert main(["route", str(path), *ROUTE_FAST, "-q"]) == 2
    assert (
        f"prompts.csv', line 4: the 'prompt' field is {what}; every prompt must hold some text"
        in capsys.readouterr().err
    )


def test_csv_column_choice(tmp_path):
    two = tmp_path / "two.csv"
    two.write_text("text,notes\na white wall,x\n")
    assert _read_prompts(str(two), "text") == ["a white wall"]
    assert _read_prompts(str(two), "notes") == ["x"]
    single = tmp_path / "single.CSV"
    single.write_text('description\na white wall\n"a, b"\n')
    assert _read_prompts(str(single)) == ["a white wall", "a, b"]  # the only column
    plain = tmp_path / "prompts.txt"  # --column reads any input as CSV
    plain.write_text('prompt\n"a, b"\n')
    assert _read_prompts(str(plain), "prompt") == ["a, b"] and _read_prompts(str(plain)) == ["prompt", '"a, b"']


def test_csv_from_standard_input(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'prompt\n"a white wall, at noon"\n')))
    assert main(["route", "-", "--column", "prompt", *ROUTE_FAST, "-q"]) == 0
    assert routed_frame(capsys.readouterr().out)["prompt"].tolist() == ["a white wall, at noon"]


@pytest.mark.parametrize(
    "content, column, message",
    [
        (
            "text,notes\na,b\n",
            None,
            r"has the columns \['text', 'notes'\] and none is named 'prompt'; choose one with --column",
        ),
        ("text,notes\na,b\n", "prompts", r"has no column 'prompts'; its columns are \['text', 'notes'\]"),
        ("id,prompt\n1,a\n2\n", None, r"line 3: 1 field\(s\), so no 'prompt' value \(the header has 2 columns\)"),
        ("prompt,prompt\na,b\n", None, "has 2 columns named 'prompt'"),
        ("prompt\n", None, r"no prompts in .* \(one row per prompt under a header\)"),
        ("", None, "no prompts in"),
    ],
    ids=["no-prompt-column", "unknown-column", "short-row", "duplicate-column", "header-only", "empty"],
)
def test_csv_errors_exit_2(tmp_path, capsys, content, column, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    args = ["route", str(path), *ROUTE_FAST] + (["--column", column] if column else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("costroute route: error: ") and "Traceback" not in err
    assert re.search(message, err), err


# ---------------------------------------------------------------- bad input, checked first
@pytest.fixture
def corrupt_data(tmp_path, monkeypatch):
    """A COSTROUTE_DATA folder whose GenAI-Bench file fails its checksum: loading it exits 1."""
    folder = tmp_path / "data"
    (folder / "genai-bench").mkdir(parents=True)
    (folder / "genai-bench" / "genai_image.json").write_text("{}")
    monkeypatch.setenv("COSTROUTE_DATA", str(folder))
    monkeypatch.setenv("COSTROUTE_DATA_HOME", str(tmp_path / "home"))
    return folder


def test_failing_to_load_the_training_data_exits_1(tmp_path, corrupt_data, capsys):
    path = tmp_path / "prompts.txt"
    path.write_text("a white wall\n")
    assert main(["route", str(path), *ROUTE_FAST]) == 1
    err = capsys.readouterr().err
    assert "costroute route: error: ChecksumError" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--budget", "-1", "argument --budget: must be finite and >= 0, got '-1'"),
        ("--budget", "nan", "argument --budget: must be finite and >= 0, got 'nan'"),
        ("--budget", "inf", "argument --budget: must be finite and >= 0, got 'inf'"),
        ("--cost-penalty", "-0.5", "argument --cost-penalty: must be finite and >= 0"),
        ("--cost-penalty", "1e400", "argument --cost-penalty: must be finite and >= 0, got '1e400'"),
        ("--cost-penalty", "abc", "argument --cost-penalty: expected a number, got 'abc'"),
    ],
)
def test_bad_numbers_are_refused_before_any_data_is_loaded(tmp_path, corrupt_data, capsys, option, value, message):
    path = tmp_path / "prompts.txt"
    path.write_text("a white wall\n")
    assert main(["route", str(path), option, value]) == 2  # 1 if the (corrupt) data were loaded first
    assert message in capsys.readouterr().err


def test_prompt_file_problems_exit_2_before_any_data_is_loaded(tmp_path, corrupt_data, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert main(["route", str(empty)]) == 2
    assert f"no prompts in '{empty}' (one prompt per line)" in capsys.readouterr().err
    assert main(["route", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read the prompts file" in capsys.readouterr().err
    assert main(["route", str(tmp_path)]) == 2  # a directory
    assert "cannot read the prompts file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "data, where",
    [
        ("a white wall\ncaf\u00e9 au lait\n".encode("latin-1"), "line 2: byte 0xe9 (byte 4 of the line)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "line 1: byte 0x89 (byte 1 of the line)"),
        (b"a cat \xed\xa0\x80 on a wall\n", "line 1: byte 0xed (byte 7 of the line)"),  # a UTF-8-encoded surrogate
    ],
    ids=["latin-1", "png", "encoded-surrogate"],
)
def test_undecodable_input_names_file_line_and_encoding(tmp_path, corrupt_data, capsys, data, where):
    path = tmp_path / "prompts.txt"
    path.write_bytes(data)
    assert main(["route", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"costroute route: error: '{path}', {where} is not valid UTF-8; expected UTF-8 text" in err


def test_utf16_input_is_recognised(tmp_path, corrupt_data, capsys):
    path = tmp_path / "prompts.txt"
    path.write_text("a white wall\n", encoding="utf-16")
    assert main(["route", str(path)]) == 2
    assert "starts with a UTF-16 byte-order mark; expected UTF-8" in capsys.readouterr().err


def test_undecodable_standard_input_is_named(monkeypatch, corrupt_data, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ok\n\xff\n")))
    assert main(["route", "-"]) == 2
    assert "standard input, line 2: byte 0xff" in capsys.readouterr().err


def test_version_and_usage_errors(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"costroute {costroute.__version__}"
    assert main([]) == 2
    assert "the following arguments are required" in capsys.readouterr().err
    assert main(["route", "p.txt", "--features", "bert"]) == 2
    assert "invalid choice: 'bert'" in capsys.readouterr().err


# ---------------------------------------------------------------- costs
def test_costs_breakdown(capsys):
    assert main(["costs", "sd15", "--steps", "25"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sd15 512x512px, steps=25") and "unet" in out
    assert main(["costs", "nope", "sd15"]) == 2
    assert "unknown architecture(s) ['nope']; valid architectures: ['sd15'" in capsys.readouterr().err
    for option in ("--steps", "--height", "--width"):
        assert main(["costs", "sd15", option, "0"]) == 2
        assert f"argument {option}: must be >= 1, got '0'" in capsys.readouterr().err


def test_closed_output_pipe_exits_quietly(tmp_path):
    """``costroute costs | head -1``: the reader is gone; no traceback, no error message.

    ``-q``: a cold FLOP cache would otherwise draw its (legitimate) progress bar on stderr.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "costroute.cli", "costs", "sd15", "--steps", "1", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # every write to stdout now fails with EPIPE
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""


# ---------------------------------------------------------------- fit, route --router, generate
class Marker(dict):
    """A type from outside costroute inside a saved router: refused unless trusted."""


def test_fit_then_route_with_the_saved_router_gives_the_refit_csv(tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a white wall\nthree red kites left of two trees at dusk\na cat\n")
    saved = tmp_path / "router.skops"
    assert main(["fit", "--dataset", "genai-bench", "-o", str(saved), *ROUTE_FAST]) == 0
    err = capsys.readouterr().err
    assert "fitting the router on 527 rated prompts" in err and f"saved the router to '{saved}'" in err
    for extra in ([], ["--budget", "0.3"], ["--cost-penalty", "0.4"]):
        assert main(["route", str(prompts), "--router", str(saved), "-q", *extra]) == 0
        with_router = capsys.readouterr().out
        assert main(["route", str(prompts), *ROUTE_FAST, "-q", *extra]) == 0
        refit = capsys.readouterr().out
        assert with_router == refit and len(routed_frame(refit)) == 3


def test_fit_stores_penalty_and_budget_that_route_may_override(tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a white wall\nthree red kites left of two trees at dusk\n")
    saved = tmp_path / "router.skops"
    assert main(["fit", "-o", str(saved), *ROUTE_FAST, "--cost-penalty", "100", "-q"]) == 0
    assert main(["route", str(prompts), "--router", str(saved), "-q"]) == 0
    assert set(routed_frame(capsys.readouterr().out)["generator"]) == {"SDXL_Turbo"}  # λ = 100 from the file
    assert main(["route", str(prompts), "--router", str(saved), "--cost-penalty", "0", "-q"]) == 0
    assert main(["route", str(prompts), *ROUTE_FAST, "--cost-penalty", "0", "-q"]) == 0
    out = capsys.readouterr().out
    half = len(out) // 2
    assert out[:half] == out[half:]  # the override equals a refit at λ = 0


@pytest.fixture(scope="module")
def complexity_router_file(tmp_path_factory):
    """A fitted complexity/ridge router over GenAI-Bench's generators, saved; and one holding a foreign type."""
    from costroute import CostAwareRouter, GeneratorSpec
    from costroute.datasets import load_genai_bench
    from costroute.io import save

    data = load_genai_bench()
    router = CostAwareRouter(data.generators, features="complexity", quality_model="ridge").fit(
        data.prompts, data.quality
    )
    folder = tmp_path_factory.mktemp("routers")
    plain = save(router, folder / "router.skops")
    specs = [GeneratorSpec(s.name, s.cost, note=Marker(a=1)) for s in data.generators]
    marked = CostAwareRouter(specs, features="complexity", quality_model="ridge").fit(data.prompts, data.quality)
    return plain, save(marked, folder / "marked.skops"), router


def test_route_with_a_router_loads_no_training_data(tmp_path, corrupt_data, complexity_router_file, capsys):
    plain, _, router = complexity_router_file
    path = tmp_path / "prompts.txt"
    path.write_text("a white wall\n")
    assert main(["route", str(path), "--router", plain]) == 0  # the (corrupt) ratings are never read
    captured = capsys.readouterr()
    assert routed_frame(captured.out)["generator"].tolist() == router.predict(["a white wall"]).tolist()
    assert "loading the router" in captured.err and "ratings" not in captured.err


def test_route_with_a_router_refuses_fit_options_and_bad_files(tmp_path, corrupt_data, complexity_router_file, capsys):
    import pickle

    plain, marked, router = complexity_router_file
    path = tmp_path / "prompts.txt"
    path.write_text("a white wall\n")
    assert main(["route", str(path), "--router", plain, "--features", "minilm", "--dataset", "genai-bench"]) == 2
    assert (
        "--dataset, --features fit a router, but --router gives a fitted one, used as it is; drop them"
        in capsys.readouterr().err
    )
    pickled = tmp_path / "router.pkl"
    pickled.write_bytes(pickle.dumps(router))
    for bad, message in [
        (tmp_path / "missing.skops", "cannot read the router file"),
        (pickled, "is a pickle, not a skops file; costroute never loads pickles"),
        (path, "is not a skops file"),
        (marked, f"holds type(s) that are not trusted: ['{Marker.__module__}.Marker']"),
    ]:
        assert main(["route", str(path), "--router", str(bad), "-q"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("costroute route: error: ") and message in err and "Traceback" not in err
    # a reviewed type is trusted by name
    assert main(["route", str(path), "--router", marked, "--trust", f"{Marker.__module__}.Marker", "-q"]) == 0
    assert routed_frame(capsys.readouterr().out)["prompt"].tolist() == ["a white wall"]


def test_route_refuses_files_without_a_fitted_text_router(tmp_path, capsys):
    import numpy as np

    from costroute import CascadeRouter, CostAwareRouter
    from costroute.io import save

    path = tmp_path / "prompts.txt"
    path.write_text("a white wall\n")
    costs = {"a": 1.0, "b": 2.0}
    numeric = CostAwareRouter(costs, features=None, quality_model="ridge").fit(np.eye(3), np.eye(3)[:, :2])
    cases = [
        (CostAwareRouter(costs), "holds a CostAwareRouter that is not fitted"),
        (numeric, "fitted on numeric features (features=None); it cannot route prompt text"),
        (CascadeRouter(numeric), "holds a CascadeRouter that is not fitted"),
    ]
    for i, (estimator, message) in enumerate(cases):
        saved = save(estimator, tmp_path / f"r{i}.skops")
        assert main(["route", str(path), "--router", saved]) == 2
        assert message in capsys.readouterr().err


def test_fit_checks_its_arguments_before_loading_data(tmp_path, corrupt_data, capsys):
    assert main(["fit", "-o", str(tmp_path / "missing" / "r.skops")]) == 2
    assert "the folder" in capsys.readouterr().err
    assert main(["fit", "-o", str(tmp_path)]) == 2
    assert "is a directory; give a file name" in capsys.readouterr().err
    assert main(["fit", "-o", str(tmp_path / "r.skops"), "--dataset", "nope"]) == 2
    assert "argument --dataset: unknown dataset 'nope'; choose one of genai-bench" in capsys.readouterr().err
    assert main(["fit", "-o", str(tmp_path / "r.skops"), "--dataset", str(tmp_path / "none.sqlite")]) == 2
    assert "no collection store" in capsys.readouterr().err
    assert main(["fit", "-o", str(tmp_path / "r.skops")]) == 1  # only now is the (corrupt) data read
    assert "ChecksumError" in capsys.readouterr().err
    assert not (tmp_path / "r.skops").exists()


def test_fit_on_a_collection_store_refuses_an_empty_store_and_a_cost_unit(tmp_path, capsys):
    store = tmp_path / "run.sqlite"
    store.write_bytes(b"")
    assert main(["fit", "--dataset", str(store), "-o", str(tmp_path / "r.skops")]) == 2
    assert "is an empty file, not a collection store" in capsys.readouterr().err
    assert main(["fit", "--dataset", str(store), "--cost-unit", "usd", "-o", str(tmp_path / "r.skops")]) == 2
    assert "a collection store's costs are in its generators' own unit" in capsys.readouterr().err
    assert not (tmp_path / "r.skops").exists()


def _incomplete_store(path, n=12, missing=("p3", "p7")):
    """A collection store whose generator 'dear' failed on the prompts ``missing`` (real collect, callables)."""
    import warnings

    import numpy as np
    from PIL import Image

    from costroute.collect import collect
    from costroute.generators import CallableGenerator
    from costroute.scoring import CallableScorer

    def draw(shift):
        def images(prompts, seeds):
            return [
                None if shift and p in missing else Image.new("L", (4, 4), (int(p[1:]) * 20 + shift) % 256)
                for p in prompts
            ]

        return images

    gens = [CallableGenerator("cheap", draw(0), cost=0.5), CallableGenerator("dear", draw(7), cost=2.0)]
    scorer = CallableScorer("bright", lambda prompts, ims: [float(np.asarray(im).mean()) for im in ims], cost=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        collect([f"p{i}" for i in range(n)], gens, [scorer], path, progress=False)
    return path


def test_fit_drop_incomplete_leaves_out_prompts_with_missing_cells(tmp_path, capsys):
    store = str(_incomplete_store(tmp_path / "run.sqlite"))
    out = str(tmp_path / "r.skops")
    fast = ["--features", "complexity", "--quality-model", "ridge"]
    assert main(["fit", "--dataset", store, "-o", out, *fast]) == 2
    assert "drop_incomplete" in capsys.readouterr().err
    assert main(["fit", "--dataset", store, "-o", out, *fast, "--drop-incomplete"]) == 0
    err = capsys.readouterr().err
    assert "left out 2 prompt(s) with missing cells (--drop-incomplete)" in err
    assert "fitting the router on 10 rated prompts" in err
    from costroute.io import load

    assert load(out).quality_model_.n_features_in_ > 0
    # only a store has incomplete prompts: refused (exit 2) with a shipped dataset, before any data is read
    assert main(["fit", "-o", out, "--drop-incomplete"]) == 2
    assert (
        "--drop-incomplete apply to a collection store STORE.sqlite, not to the shipped dataset 'genai-bench'"
        in capsys.readouterr().err
    )


def test_fit_warns_when_knn_would_average_every_prompt_of_a_small_store(tmp_path, capsys):
    store = str(_incomplete_store(tmp_path / "run.sqlite", missing=()))
    assert main(["fit", "--dataset", store, "-o", str(tmp_path / "r.skops"), "--features", "complexity"]) == 0
    err = capsys.readouterr().err
    assert (
        "costroute fit: warning: quality_model k-nearest neighbours with k=12 on n=12 training prompts averages "
        "all of them" in err
    )
    assert 'quality_model="ridge"' in err


SHORT = ["a cat", "a dog", "a red kite", "a white wall", "a tree", "a blue car"]
LONG = [
    "three red kites left of two tall trees at dusk, and a dog below them",
    "a crowded market street at night with neon signs, five people and a bicycle",
    "two cats on a sofa next to a window, one black and one white, in the rain",
    "an oil painting of a lighthouse on a cliff with waves and seagulls above it",
    "a kitchen table with four cups, a teapot and a plate of lemons in the morning",
    "a dragon flying over a castle while knights ride across the bridge below",
]


@pytest.fixture(scope="module")
def tiny_routers(tmp_path_factory):
    """Routers over DiffusersGenerators of a tiny pipeline folder, saved: working, one generator's folder
    gone, every folder gone. Short prompts go to "quick" (1 step), long ones to "slow" (3 steps)."""
    import shutil

    import numpy as np
    import torch

    from costroute import CostAwareRouter
    from costroute.generators import DiffusersGenerator, build_tiny_pipeline
    from costroute.io import save

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models gain nothing from threads on a shared machine
    root = tmp_path_factory.mktemp("tiny")
    folder = build_tiny_pipeline(root / "tiny-sd", kind="sd", seed=0)
    gone = shutil.copytree(folder, root / "gone")
    quality = np.array([[3.0, 3.0]] * len(SHORT) + [[1.0, 4.0]] * len(LONG))

    def fit_and_save(name, quick_folder, slow_folder):
        generators = [
            DiffusersGenerator("quick", quick_folder, steps=1, guidance_scale=1.0),
            DiffusersGenerator("slow", slow_folder, steps=3),
        ]
        router = CostAwareRouter(
            generators, features="complexity", quality_model="ridge", cost_penalty=0.5, progress=False
        ).fit(SHORT + LONG, quality)
        return save(router, root / name), router

    files = {
        "ok": fit_and_save("ok.skops", folder, folder),
        "slow-gone": fit_and_save("slow.skops", folder, gone),
        "all-gone": fit_and_save("all.skops", gone, gone),
    }
    shutil.rmtree(gone)
    yield files
    torch.set_num_threads(threads)


def test_generate_writes_the_images_and_a_csv(tmp_path, tiny_routers, capsys):
    import numpy as np
    from PIL import Image

    from costroute.generators import pipeline_cache

    path, router = tiny_routers["ok"]
    prompts = ["a bird", LONG[0], "a tree", "two dogs and three cats playing with a red ball in a park at noon"]
    source = tmp_path / "prompts.txt"
    source.write_text("\n".join(prompts) + "\n")
    out = tmp_path / "images"
    assert main(["generate", str(source), "--router", path, "--out", str(out), "--seed", "5", "--batch-size", "2"]) == 0
    err = capsys.readouterr().err
    assert "routed with cost_penalty=0.5" in err and "4 images in" in err
    frame = pd.read_csv(out / "images.csv", keep_default_na=False)
    plan = router.route(prompts)
    assert frame["prompt"].tolist() == prompts
    assert frame["generator"].tolist() == frame["planned_generator"].tolist() == plan.generator_names.tolist()
    assert frame["generator"].tolist() == ["quick", "slow", "quick", "slow"]
    assert frame["status"].tolist() == ["made"] * 4 and not frame["fell_back"].any()
    assert frame["expected_quality"].tolist() == pytest.approx(plan.expected_quality.tolist(), rel=1e-5)
    assert sorted(p.name for p in out.iterdir()) == sorted(frame["file"].tolist() + ["images.csv"])
    pipeline_cache.clear()
    expected = plan.generate(seed=5, batch_size=2, progress=False)  # the same images, made here
    for i, name in enumerate(frame["file"]):
        assert name == f"image_{i:04d}_{frame['generator'][i]}.png" and frame["seed"][i] == expected.seeds[i]
        assert np.array_equal(np.asarray(Image.open(out / name)), np.asarray(expected[i]))
    pipeline_cache.clear()


def test_generate_falls_back_and_reports_failures(tmp_path, tiny_routers, capsys):
    from costroute.generators import pipeline_cache

    source = tmp_path / "prompts.txt"
    source.write_text(f"a bird\n{LONG[1]}\n")
    out = tmp_path / "fallback"
    assert main(["generate", str(source), "--router", tiny_routers["slow-gone"][0], "--out", str(out), "-q"]) == 0
    frame = pd.read_csv(out / "images.csv", keep_default_na=False)
    assert frame["planned_generator"].tolist() == ["quick", "slow"]
    assert frame["generator"].tolist() == ["quick", "quick"] and frame["fell_back"].tolist() == [False, True]
    assert (out / "image_0001_quick.png").is_file()
    out = tmp_path / "failed"
    assert main(["generate", str(source), "--router", tiny_routers["all-gone"][0], "--out", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert "costroute generate: error: 2 of 2 images failed" in err and "images.csv" in err
    frame = pd.read_csv(out / "images.csv", keep_default_na=False)
    assert frame["status"].tolist() == ["failed", "failed"] and frame["file"].tolist() == ["", ""]
    assert sorted(p.name for p in out.iterdir()) == ["images.csv"]
    pipeline_cache.clear()


def test_generate_refuses_routers_without_backends_and_bad_output(
    tmp_path, complexity_router_file, tiny_routers, capsys
):
    source = tmp_path / "prompts.txt"
    source.write_text("a bird\n")
    plain, _, _ = complexity_router_file
    out = tmp_path / "images"
    assert main(["generate", str(source), "--router", plain, "--out", str(out), "-q"]) == 2
    assert (
        "the router's generator(s) ['DeepFloyd_I_XL_v1', 'SDXL_Base', 'SDXL_Turbo', 'SDXL_2_1'] are plain "
        "GeneratorSpecs (a name and a cost) and cannot make images"
    ) in capsys.readouterr().err
    assert not out.exists()
    assert main(["generate", str(source), "--router", tiny_routers["ok"][0], "--out", str(source), "-q"]) == 2
    assert "is a file; give a folder for the images" in capsys.readouterr().err
    assert main(["generate", str(source), "--router", tiny_routers["ok"][0], "--out", str(out), "--seed", "-1"]) == 2
    assert "argument --seed: must be >= 0, got '-1'" in capsys.readouterr().err
    assert main(["generate", str(source), "--out", str(out)]) == 2
    assert "the following arguments are required: --router" in capsys.readouterr().err


def test_collect_with_tiny_models_prints_only_its_own_lines_and_progress(tmp_path, tiny_sd):
    """transformers' and diffusers' known notices (torchvision, accelerate, CLIP truncation) stay off stderr."""
    import os

    from costroute.scoring import build_tiny_clip

    clip = build_tiny_clip(tmp_path / "tiny-clip", seed=0)
    prompts = tmp_path / "prompts.txt"
    long = "a small red kite over a wide green hill at dusk, painted in oils with long soft brush strokes " * 3
    prompts.write_text(f"{long}\na white wall\n")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "costroute.cli",
            "collect",
            str(prompts),
            "--generators",
            f"tiny=diffusers:{tiny_sd}:2",
            "--scorer",
            f"clip:{clip}",
            "--store",
            str(tmp_path / "run.sqlite"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for noise in (
        "requires torchvision",
        "accelerate",
        "pip install",
        "truncated because CLIP",
        "Token indices sequence length",
        "```",
    ):
        assert noise not in done.stderr, done.stderr
    lines = [line for line in re.split(r"[\r\n]+", done.stderr) if line.strip()]
    # costroute's own lines, and progress bars (collect's, and counting FLOPs from the configs)
    assert all(line.startswith("costroute collect:") or "%|" in line for line in lines), lines
    assert "2 cells written" in done.stderr


def test_known_notices_filter_is_scoped_and_lets_other_messages_through():
    import logging

    from transformers.utils import logging as transformers_logging

    from costroute.generators._loading import known_notices_filtered

    logger = transformers_logging.get_logger("transformers.some_module")
    root = transformers_logging.get_logger("transformers")
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    root.addHandler(handler)  # where the library's records are printed
    before = [list(root.filters)] + [list(h.filters) for h in root.handlers]
    try:
        with known_notices_filtered():
            logger.warning("`CLIPImageProcessor` requires torchvision (not installed); falling back")
            logger.warning("Cannot initialize model with low cpu memory usage because `accelerate` was not found")
            logger.warning("some other warning that matters")
            logger.error("The following part of your input was truncated because CLIP can only handle sequences up to")
        logger.warning("`CLIPImageProcessor` requires torchvision, after the block")
        after = [list(root.filters)] + [list(h.filters) for h in root.handlers]
    finally:
        root.removeHandler(handler)
    assert seen == [
        "some other warning that matters",
        "The following part of your input was truncated because CLIP can only handle sequences up to",  # an error
        "`CLIPImageProcessor` requires torchvision, after the block",
    ]
    assert after == before


def test_fit_on_a_store_that_cannot_be_fitted_is_bad_input(tmp_path, capsys):
    """A one-prompt store, or a directory named like a store: exit 2 with the reason, not exit 1."""
    store = str(_incomplete_store(tmp_path / "one.sqlite", n=1, missing=()))
    out = str(tmp_path / "r.skops")
    assert main(["fit", "--dataset", store, "-o", out, "--features", "complexity", "--quality-model", "ridge"]) == 2
    assert (
        f"costroute fit: error: cannot fit a router on the store {store!r}: quality_model='ridge' needs at least 2 "
        "rated prompts" in capsys.readouterr().err
    )
    (tmp_path / "dir.sqlite").mkdir()
    assert main(["fit", "--dataset", str(tmp_path / "dir.sqlite"), "-o", out]) == 2
    assert "is a directory, not a collection store" in capsys.readouterr().err
    assert not (tmp_path / "r.skops").exists()
