"""Prompt sets without scores: PartiPrompts, DiffusionDB user prompts, TIFA's COCO and DrawBench."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._base import RemoteFile, fetch_file

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from sklearn.utils import Bunch


def _raw(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


_PARTI_COMMIT = "5a657978134374ce28973948331b319adef164bd"
_IMAGEREWARD_COMMIT = "c1392c6dd0fd6ecd6d416c96959ab744a6d0a8fb"
_TIFA_COMMIT = "8e37050f44ab4ee681e4251f3c8a9d4cc86e901e"

# The README of the shared data gives no digests for these three; they were computed from
# the shared copies (unmodified upstream files at the pinned commits).
PARTIPROMPTS = RemoteFile(
    subdir="prompts/partiprompts",
    filename="PartiPrompts.tsv",
    url=_raw("google-research/parti", _PARTI_COMMIT, "PartiPrompts.tsv"),
    sha256="fab29e41bb512a169b56acab4cf2a41dcb675e285df2efcde6640c7dd3c440eb",
    size=123_107,
    license="Apache-2.0",
)
DIFFUSIONDB = RemoteFile(
    subdir="prompts/diffusiondb",
    filename="refl_data.json",
    url=_raw("THUDM/ImageReward", _IMAGEREWARD_COMMIT, "data/refl_data.json"),
    sha256="47cc5f5c0faa36167c5bd10cdc3aee0b1072147b44d3ae18f77bd98f377ecbb8",
    size=2_144_693,
    license="Apache-2.0 AND CC0-1.0",
)
TIFA = RemoteFile(
    subdir="prompts/coco-tifa",
    filename="tifa_v1.0_text_inputs.json",
    url=_raw("Yushi-Hu/tifa", _TIFA_COMMIT, "tifa_v1.0/tifa_v1.0_text_inputs.json"),
    sha256="650281d508b056ac9782bc84d5493626424ee851a8778af90b9db554cfbc1a0f",
    size=549_960,
    license="Apache-2.0 AND CC-BY-4.0",
)


@dataclass(frozen=True)
class _PromptSet:
    remote: RemoteFile
    n: int
    description: str


_SETS: dict[str, _PromptSet] = {
    "partiprompts": _PromptSet(
        PARTIPROMPTS,
        1632,
        f"""\
PartiPrompts (P2)
=================

1,632 English prompts written to probe text-to-image models, each with a Category (12
values: Animals, Artifacts, World Knowledge, ...) and a Challenge (11 values: Basic,
Fine-grained Detail, Imagination, Quantity, ...), plus an optional Note. The file is read
literally (tab-separated, no quote processing), so prompts keep their quotation marks and
surrounding spaces; an empty Note is the empty string.

``frame`` columns: Prompt, Category, Challenge, Note (as in the file).

Source: https://github.com/google-research/parti at commit {_PARTI_COMMIT}, file
PartiPrompts.tsv, sha256 {PARTIPROMPTS.sha256}.
Reference: Yu et al., "Scaling Autoregressive Models for Content-Rich Text-to-Image
Generation", 2022.
License: Apache-2.0.
""",
    ),
    "diffusiondb": _PromptSet(
        DIFFUSIONDB,
        10_000,
        f"""\
DiffusionDB prompts (ImageReward ReFL subset)
=============================================

10,000 real user prompts written for Stable Diffusion, as collected in DiffusionDB and
sampled by ImageReward for ReFL training. They are long and noisy (artist names, style
tags, weights), 9,803 distinct. Use them for throughput and routing-distribution
benchmarks; they carry no quality scores.

``frame`` columns: text (the prompt), image (the DiffusionDB image id).

Source: https://github.com/THUDM/ImageReward at commit {_IMAGEREWARD_COMMIT}, file
data/refl_data.json, sha256 {DIFFUSIONDB.sha256}.
Reference: Wang et al., "DiffusionDB", 2022; Xu et al., "ImageReward", 2023.
License: the ImageReward repository is Apache-2.0; DiffusionDB prompts are CC0-1.0.
""",
    ),
    "coco": _PromptSet(
        TIFA,
        2000,
        f"""\
COCO captions (TIFA v1.0)
=========================

The 2,000 MS-COCO validation captions of the TIFA v1.0 benchmark (the entries of
tifa_v1.0_text_inputs.json whose id starts with "coco_"), in file order. Short, literal
descriptions of everyday scenes.

``frame`` columns: id (the TIFA id, "coco_<caption id>"), caption (the prompt),
coco_val_id (the COCO image id).

Source: https://github.com/Yushi-Hu/tifa at commit {_TIFA_COMMIT}, file
tifa_v1.0/tifa_v1.0_text_inputs.json, sha256 {TIFA.sha256}.
Reference: Hu et al., "TIFA: Accurate and Interpretable Text-to-Image Faithfulness
Evaluation with Question Answering", 2023; Lin et al., "Microsoft COCO", 2014.
License: the TIFA repository is Apache-2.0; COCO captions are CC-BY-4.0.
""",
    ),
    "drawbench": _PromptSet(
        TIFA,
        161,
        f"""\
DrawBench (TIFA v1.0)
=====================

The 161 DrawBench prompts included in the TIFA v1.0 benchmark (the entries of
tifa_v1.0_text_inputs.json whose id starts with "drawbench_"), in file order. DrawBench
(Saharia et al., "Imagen", 2022) probes colours, counting, spatial relations, text
rendering and rare words. The original DrawBench has 200 prompts; TIFA keeps 161.

``frame`` columns: id (the TIFA id, "drawbench_<n>"), caption (the prompt).

Source: https://github.com/Yushi-Hu/tifa at commit {_TIFA_COMMIT}, file
tifa_v1.0/tifa_v1.0_text_inputs.json, sha256 {TIFA.sha256}.
License: the TIFA repository is Apache-2.0.
""",
    ),
}

#: Names accepted by :func:`load_prompts`.
PROMPT_SETS = tuple(_SETS)


def _read_parti(path: os.PathLike) -> tuple[list[str], pd.DataFrame]:
    import pandas as pd

    frame = pd.read_csv(
        path,
        sep="\t",
        quoting=csv.QUOTE_NONE,
        keep_default_na=False,
        dtype=str,
        encoding="utf-8",
    )
    return frame["Prompt"].tolist(), frame


def _read_diffusiondb(path: os.PathLike) -> tuple[list[str], pd.DataFrame]:
    import pandas as pd

    with open(path, encoding="utf-8") as f:
        records = json.load(f)
    frame = pd.DataFrame({"text": [str(r["text"]) for r in records], "image": [str(r["image"]) for r in records]})
    return frame["text"].tolist(), frame


def _read_tifa(path: os.PathLike, prefix: str, columns: list[str]) -> tuple[list[str], pd.DataFrame]:
    import pandas as pd

    with open(path, encoding="utf-8") as f:
        records = json.load(f)
    rows = [r for r in records if str(r["id"]).split("_", 1)[0] == prefix]
    frame = pd.DataFrame({c: [str(r[c]) for r in rows] for c in columns})
    return frame["caption"].tolist(), frame


def load_prompts(
    name: str,
    data_home: str | os.PathLike | None = None,
    download: bool = True,
) -> Bunch:
    """Load a public set of text-to-image prompts (no quality scores).

    The raw upstream file (pinned to a commit and a sha256) is found or downloaded by
    :func:`fetch_file`.

    Parameters
    ----------
    name : {"partiprompts", "diffusiondb", "coco", "drawbench"}
        Which set:

        - ``"partiprompts"``: the 1,632 PartiPrompts with Category and Challenge
          (google-research/parti, Apache-2.0);
        - ``"diffusiondb"``: 10,000 real user prompts from DiffusionDB, as sampled by
          ImageReward (THUDM/ImageReward ``data/refl_data.json``; CC0-1.0 prompts);
        - ``"coco"``: the 2,000 MS-COCO captions of TIFA v1.0 (Yushi-Hu/tifa; CC-BY-4.0);
        - ``"drawbench"``: the 161 DrawBench prompts of TIFA v1.0.
    data_home : str or path-like, default=None
        Download cache folder; see :func:`get_data_home`.
    download : bool, default=True
        Whether to download the file when it is not found locally.

    Returns
    -------
    data : sklearn.utils.Bunch
        Dictionary-like object with the fields:

        prompts : list of str
            The prompts, in file order, exactly as in the file.
        frame : pandas.DataFrame
            One row per prompt with the file's fields (the prompt column included):
            Prompt, Category, Challenge, Note for ``"partiprompts"``; text, image for
            ``"diffusiondb"``; id, caption, coco_val_id for ``"coco"``; id, caption for
            ``"drawbench"``.
        name : str
            The set's name.
        path : pathlib.Path
            The file that was read.
        description : str
            The set's description, source and license.

    Raises
    ------
    ValueError
        If ``name`` is not one of the names above.

    Examples
    --------
    >>> from costroute.datasets import load_prompts
    >>> parti = load_prompts("partiprompts")  # doctest: +SKIP
    >>> len(parti.prompts)  # doctest: +SKIP
    1632
    """
    from sklearn.utils import Bunch

    if not isinstance(name, str) or name not in _SETS:
        raise ValueError(f"unknown prompt set {name!r}; valid names are {list(PROMPT_SETS)}")
    spec = _SETS[name]
    path = fetch_file(spec.remote, data_home=data_home, download=download)
    if name == "partiprompts":
        prompts, frame = _read_parti(path)
    elif name == "diffusiondb":
        prompts, frame = _read_diffusiondb(path)
    elif name == "coco":
        prompts, frame = _read_tifa(path, "coco", ["id", "caption", "coco_val_id"])
    else:
        prompts, frame = _read_tifa(path, "drawbench", ["id", "caption"])
    if len(prompts) != spec.n:
        raise ValueError(f"{path}: expected {spec.n} {name} prompts, found {len(prompts)}")
    return Bunch(prompts=prompts, frame=frame, name=name, path=path, description=spec.description)
