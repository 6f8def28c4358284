"""Importing costroute.datasets has no side effects."""

import subprocess
import sys
import textwrap


def test_import_reads_no_data_and_imports_no_heavy_module():
    code = textwrap.dedent(
        """
        import os, sys
        DATA_FILES = {"genai_image.json", "data.csv", "PartiPrompts.tsv", "refl_data.json",
                      "tifa_v1.0_text_inputs.json"}
        opened = []
        def hook(event, args):
            if event == "open" and isinstance(args[0], str):
                if os.path.basename(args[0]) in DATA_FILES:
                    opened.append(args[0])
            if event.startswith(("socket.", "urllib.")):
                opened.append(event)
        sys.addaudithook(hook)
        import costroute.datasets
        heavy = [m for m in ("torch", "diffusers", "sentence_transformers") if m in sys.modules]
        assert not opened, opened
        assert not heavy, heavy
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_public_api():
    import costroute.datasets as ds

    for name in (
        "load_genai_bench",
        "load_agiqa3k",
        "load_prompts",
        "get_data_home",
        "fetch_file",
        "ChecksumError",
        "DataNotFoundError",
        "DownloadError",
        "RemoteFile",
    ):
        assert name in ds.__all__ and hasattr(ds, name)
    assert issubclass(ds.ChecksumError, OSError)
    assert issubclass(ds.DataNotFoundError, FileNotFoundError)
