"""The costroute command: route a prompts file, print costs, clear errors."""

import io

import pandas as pd
import pytest

from costroute.cli import main


def test_route_a_prompts_file(tmp_path, capsys):
    path = tmp_path / "prompts.txt"
    path.write_text("a white wall\n\nthree red kites left of two trees at dusk\n\n")
    assert main(["route", str(path), "--features", "complexity", "--quality-model", "ridge", "--budget", "0.3"]) == 0
    out, err = capsys.readouterr()
    frame = pd.read_csv(io.StringIO(out), keep_default_na=False)
    assert frame["prompt"].tolist() == ["a white wall", "", "three red kites left of two trees at dusk"]
    assert set(frame["generator"]) <= {"DeepFloyd_I_XL_v1", "SDXL_Base", "SDXL_Turbo", "SDXL_2_1"}
    assert "predicted_SDXL_Turbo" in frame.columns
    assert frame["normalized_cost"].mean() <= 0.3 + 1e-9
    assert "3 prompts routed" in err


def test_route_errors(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(SystemExit, match="no prompts"):
        main(["route", str(empty), "--features", "complexity"])
    assert main(["route", str(tmp_path / "missing.txt")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_crlf_bom_and_penalty_floor_under_budget(tmp_path, capsys):
    path = tmp_path / "windows.txt"
    path.write_bytes("\ufeffa white wall\r\na red kite\r\n".encode("utf-8"))
    args = ["route", str(path), "--features", "complexity", "--quality-model", "ridge"]
    assert main(args + ["--budget", "1.0", "--cost-penalty", "100"]) == 0
    out, err = capsys.readouterr()
    frame = pd.read_csv(io.StringIO(out))
    assert frame["prompt"].tolist() == ["a white wall", "a red kite"]
    assert set(frame["generator"]) == {"SDXL_Turbo"}      # the penalty is a floor under the budget
    assert "cost_penalty=100" in err


def test_costs_breakdown(capsys):
    assert main(["costs", "sd15", "--steps", "25"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sd15 512x512px, steps=25") and "unet" in out
    assert main(["costs", "nope"]) == 2
    assert "valid architectures" in capsys.readouterr().err
