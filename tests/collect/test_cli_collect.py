"""`costroute collect`: generator and scorer specs, a real run, and bad input refused before anything loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from costroute.cli import main
from costroute.collect import parse_generator, parse_scorer
from costroute.datasets import load_collection
from costroute.generators import DiffusersGenerator
from costroute.scoring import CLIPScorer, VQAScorer

from ._helpers import integrity


def test_generator_specs(tiny_sd):
    turbo = parse_generator("sdxl-turbo-1")
    assert (turbo.name, turbo.steps, turbo.model) == ("sdxl-turbo-1", 1, "stabilityai/sdxl-turbo")
    more = parse_generator("sd15-25:30")
    assert (more.name, more.steps) == ("sd15-25-30steps", 30)
    named = parse_generator(f"fast=diffusers:{tiny_sd}:2")
    assert isinstance(named, DiffusersGenerator) and (named.name, named.steps, named.model) == ("fast", 2, tiny_sd)
    default = parse_generator(f"diffusers:{tiny_sd}")
    assert (default.name, default.steps) == ("tiny-sd", 50)
    hub = parse_generator("diffusers:stabilityai/sdxl-turbo:4")
    assert (hub.name, hub.model, hub.steps) == ("sdxl-turbo-4steps", "stabilityai/sdxl-turbo", 4)


def test_scorer_specs(tiny_clip):
    clip = parse_scorer(f"judge=clip:{tiny_clip}")
    assert isinstance(clip, CLIPScorer) and (clip.name, clip.model) == ("judge", tiny_clip)
    assert parse_scorer(f"clip:{tiny_clip}").name == "clipscore:tiny-clip"
    assert isinstance(parse_scorer("vqa"), VQAScorer)


@pytest.mark.parametrize(
    "text, error, match",
    [
        ("sdxl-turbo-9", ValueError, r"unknown generator 'sdxl-turbo-9'; expected .*PRESET one of \['sdxl-turbo-1'"),
        ("diffusers:", ValueError, "names no model"),
        (
            "diffusers:/no/such/folder:2",
            FileNotFoundError,
            "model folder '/no/such/folder' of generator 'folder-2steps'",
        ),
        ("sd15-25:0", ValueError, "steps must be >= 1"),
        (
            "diffusers:tiny-sd:abc",
            ValueError,
            r"steps must be an integer >= 1 in generator 'diffusers:tiny-sd:abc', "
            r"got 'abc'.* e\.g\. diffusers:tiny-sd:4",
        ),
        ("sd15-25:x2", ValueError, r"steps must be an integer >= 1 in generator 'sd15-25:x2', got 'x2'"),
        ("", ValueError, "empty generator"),
    ],
)
def test_bad_generator_specs(text, error, match):
    with pytest.raises(error, match=match):
        parse_generator(text)


@pytest.mark.parametrize(
    "text, error, match",
    [
        ("pickscore", ValueError, r"unknown scorer 'pickscore'; expected \[NAME=\]clip\[:MODEL\] or \[NAME=\]vqa"),
        ("clip:/no/such/clip", FileNotFoundError, "model folder '/no/such/clip' does not exist"),
    ],
)
def test_bad_scorer_specs(text, error, match):
    with pytest.raises(error, match=match):
        parse_scorer(text)


def test_collect_command_fills_a_store_and_resumes(tmp_path, tiny_sd, tiny_clip, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cat\ntwo blue dogs\nzebra 42\n")
    args = [
        "collect",
        str(prompts),
        "--generators",
        f"two=diffusers:{tiny_sd}:2",
        f"three=diffusers:{tiny_sd}:3",
        "--scorer",
        f"clip:{tiny_clip}",
        "--store",
        str(tmp_path / "run.sqlite"),
        "--seeds",
        "2",
        "--batch-size",
        "4",
    ]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "3 prompt(s) x 2 generator(s) x 2 seed(s), scored by clipscore:tiny-clip" in err
    assert "12 cells written (12 images generated, 0 saved images scored again), 0 already in the store" in err
    assert "12/12" in err  # the progress bar
    assert integrity(tmp_path / "run.sqlite")["images"] == 12
    data = load_collection(tmp_path / "run.sqlite")
    assert data.quality.shape == (3, 2) and data.generators.names == ["two", "three"]
    assert data.generators["two"].cost < data.generators["three"].cost and data.cost_unit == "flops"
    assert main(args + ["-q"]) == 0 and capsys.readouterr().err == ""
    # fit a router on the store, save it, and route a prompts file with the saved router
    router = tmp_path / "router.skops"
    assert (
        main(
            [
                "fit",
                "--dataset",
                str(tmp_path / "run.sqlite"),
                "-o",
                str(router),
                "--features",
                "complexity",
                "--quality-model",
                "ridge",
                "-q",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["route", str(prompts), "--router", str(router), "-q"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("prompt,generator")
    assert all(line.split(",")[1] in ("two", "three") for line in lines[1:])
    assert main(["fit", "--dataset", str(tmp_path / "run.sqlite"), "--scorer", "nope", "-o", str(router)]) == 2
    assert "nope" in capsys.readouterr().err  # the error names the scorer asked for


def test_bad_input_exits_2_before_torch_is_imported(tmp_path, tiny_sd, tiny_clip):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cat\ntwo blue dogs\n")
    dupes = tmp_path / "dupes.txt"
    dupes.write_text("a red cat\na red cat\n")
    good = ["--generators", f"diffusers:{tiny_sd}:2", "--scorer", f"clip:{tiny_clip}"]
    store = ["--store", str(tmp_path / "run.sqlite")]
    text_store = tmp_path / "notes.txt"
    text_store.write_text("not a store\n")
    cases = [
        ["collect", str(prompts), "--generators", "sdxl-turbo-9", "--scorer", f"clip:{tiny_clip}", *store],
        ["collect", str(prompts), "--generators", "diffusers:/no/such/folder", "--scorer", "clip", *store],
        ["collect", str(prompts), "--generators", f"diffusers:{tiny_sd}:2", "--scorer", "pickscore", *store],
        [
            "collect",
            str(prompts),
            "--generators",
            f"a=diffusers:{tiny_sd}:2",
            f"a=diffusers:{tiny_sd}:3",
            "--scorer",
            "clip",
            *store,
        ],
        ["collect", str(dupes), *good, *store],
        ["collect", str(prompts), *good, "--store", str(tmp_path / "missing" / "run.sqlite")],
        ["collect", str(prompts), *good, *store, "--seeds", "0"],
        ["collect", str(tmp_path / "nothing.txt"), *good, *store],
        ["collect", str(prompts), *good, "--store", str(text_store)],
        ["collect", str(prompts), "--generators", f"diffusers:{tiny_sd}:abc", "--scorer", f"clip:{tiny_clip}", *store],
    ]
    code = (
        "import json, sys\nfrom costroute.cli import main\n"
        f"codes = [main(args) for args in {cases!r}]\n"
        "print(json.dumps([codes, 'torch' in sys.modules, 'diffusers' in sys.modules]))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    codes, torch_loaded, diffusers_loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert codes == [2] * len(cases) and not torch_loaded and not diffusers_loaded, run.stderr
    err = run.stderr
    assert "costroute collect: error: unknown generator 'sdxl-turbo-9'" in err
    assert "model folder '/no/such/folder' of generator 'folder' does not exist" in err
    assert "unknown scorer 'pickscore'" in err
    assert "generator names must be unique; duplicated: ['a']" in err
    assert "1 duplicate(s), e.g. ['a red cat']" in err
    assert "does not exist; create" in err
    assert "argument --seeds: must be >= 1, got '0'" in err
    assert "cannot read the prompts file" in err
    assert (
        f"costroute collect: error: {str(text_store)!r} is not a costroute collection store: file is not a "
        "database" in err
    )
    assert f"steps must be an integer >= 1 in generator 'diffusers:{tiny_sd}:abc', got 'abc'" in err
    assert "prompt(s) x" not in err  # every refusal comes before the banner
    assert not (tmp_path / "run.sqlite").exists() and text_store.read_text() == "not a store\n"


def test_quiet_collect_in_a_fresh_process_prints_nothing(tmp_path, tiny_sd, tiny_clip):
    """-q silences everything on stderr, the bar of the first FLOP count included."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red cat\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "costroute.cli",
            "collect",
            str(prompts),
            "--generators",
            f"t=diffusers:{tiny_sd}:1",
            "--scorer",
            f"clip:{tiny_clip}",
            "--store",
            str(tmp_path / "run.sqlite"),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and run.stderr == "", run.stderr
