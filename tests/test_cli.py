"""The costroute command: route a prompts file, print costs, clear errors and exit codes."""

import io
import re
import subprocess
import sys

import pandas as pd
import pytest

import costroute
from costroute.cli import _read_prompts, main

ROUTE_FAST = ["--features", "complexity", "--quality-model", "ridge"]
GENERATORS = {"DeepFloyd_I_XL_v1", "SDXL_Base", "SDXL_Turbo", "SDXL_2_1"}


def routed_frame(out):
    return pd.read_csv(io.StringIO(out), keep_default_na=False)


def test_route_a_prompts_file(tmp_path, capsys):
    path = tmp_path / "prompts.txt"
    path.write_text("a white wall\n\nthree red kites left of two trees at dusk\n\n")
    assert main(["route", str(path), *ROUTE_FAST, "--budget", "0.3"]) == 0
    out, err = capsys.readouterr()
    frame = routed_frame(out)
    assert frame["prompt"].tolist() == ["a white wall", "", "three red kites left of two trees at dusk"]
    assert set(frame["generator"]) <= GENERATORS
    assert "predicted_SDXL_Turbo" in frame.columns
    assert frame["normalized_cost"].mean() <= 0.3 + 1e-9
    # the long steps say what they are doing, then the summary
    assert "loading the genai-bench ratings" in err and "fitting the router on 527 rated prompts" in err
    assert "3 prompts routed" in err


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
    assert set(frame["generator"]) == {"SDXL_Turbo"}      # the penalty is a floor under the budget
    assert "cost_penalty=100" in err


# ---------------------------------------------------------------- CSV input
def test_csv_file_with_header_quotes_and_multiline_fields(tmp_path, capsys):
    path = tmp_path / "prompts.csv"
    path.write_text(
        'id,prompt,category\n'
        '1,"a red kite, a blue kite",kites\n'
        '2,"a poem on a sign:\nroses are red",text\n'
        '\n'
        '3,"she said ""hi""",quotes\n'
        '4,,empty\n'
    )
    assert main(["route", str(path), *ROUTE_FAST, "-q"]) == 0
    frame = routed_frame(capsys.readouterr().out)
    assert frame["prompt"].tolist() == ["a red kite, a blue kite", "a poem on a sign:\nroses are red", 'she said "hi"', ""]


def test_csv_column_choice(tmp_path):
    two = tmp_path / "two.csv"
    two.write_text("text,notes\na white wall,x\n")
    assert _read_prompts(str(two), "text") == ["a white wall"]
    assert _read_prompts(str(two), "notes") == ["x"]
    single = tmp_path / "single.CSV"
    single.write_text("description\na white wall\n\"a, b\"\n")
    assert _read_prompts(str(single)) == ["a white wall", "a, b"]    # the only column
    plain = tmp_path / "prompts.txt"                                  # --column reads any input as CSV
    plain.write_text("prompt\n\"a, b\"\n")
    assert _read_prompts(str(plain), "prompt") == ["a, b"] and _read_prompts(str(plain)) == ["prompt", '"a, b"']


def test_csv_from_standard_input(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'prompt\n"a white wall, at noon"\n')))
    assert main(["route", "-", "--column", "prompt", *ROUTE_FAST, "-q"]) == 0
    assert routed_frame(capsys.readouterr().out)["prompt"].tolist() == ["a white wall, at noon"]


@pytest.mark.parametrize(
    "content, column, message",
    [
        ("text,notes\na,b\n", None, r"has the columns \['text', 'notes'\] and none is named 'prompt'; choose one with --column"),
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
    assert main(["route", str(path), option, value]) == 2     # 1 if the (corrupt) data were loaded first
    assert message in capsys.readouterr().err


def test_prompt_file_problems_exit_2_before_any_data_is_loaded(tmp_path, corrupt_data, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert main(["route", str(empty)]) == 2
    assert f"no prompts in '{empty}' (one prompt per line)" in capsys.readouterr().err
    assert main(["route", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read the prompts file" in capsys.readouterr().err
    assert main(["route", str(tmp_path)]) == 2                # a directory
    assert "cannot read the prompts file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "data, where",
    [
        ("a white wall\ncaf\u00e9 au lait\n".encode("latin-1"), "line 2: byte 0xe9 (byte 4 of the line)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "line 1: byte 0x89 (byte 1 of the line)"),
        (b"a cat \xed\xa0\x80 on a wall\n", "line 1: byte 0xed (byte 7 of the line)"),   # a UTF-8-encoded surrogate
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
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    proc.stdout.close()                  # every write to stdout now fails with EPIPE
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""
