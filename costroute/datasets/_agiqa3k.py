"""AGIQA-3K: 300 prompts x 10 generator configurations, perceptual quality and alignment MOS."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from ._base import RemoteFile, fetch_file

if TYPE_CHECKING:  # pragma: no cover
    from sklearn.utils import Bunch

COST_UNITS = ("flops", "usd")  # the units of the shipped cost tables (nothing here was timed)
_REPO = "lcysyzxdxc/AGIQA-3k-Database"
_COMMIT = "30ded2bed96fc78070636548e811ece37e5d8f66"

AGIQA3K = RemoteFile(
    subdir="agiqa-3k",
    filename="data.csv",
    url=f"https://raw.githubusercontent.com/{_REPO}/{_COMMIT}/data.csv",
    sha256="4b1945c2137e196d9378b9cf4a114de2267b97a4724f0743e260287eb2ddd6c0",
    size=445_544,
    license="MIT",
)

#: target name -> (MOS column, standard-deviation column)
TARGETS = {
    "alignment": ("mos_align", "std_align"),
    "quality": ("mos_quality", "std_quality"),
}

_NAME_RE = re.compile(r"^(?P<config>.+)_(?P<index>\d+)\.jpg$")
_TEXT_COLUMNS = ("name", "prompt", "adj1", "adj2", "style")

_DESCRIPTION = f"""\
AGIQA-3K
========

2,982 AI-generated images: 300 prompts x 10 generator configurations (AttnGAN_normal,
glide_normal, DALLE2_normal, xl2.2_normal = SDXL beta, sd1.5_normal, sd1.5_lowstep = fewer
denoising steps, sd1.5_highcorr / sd1.5_lowcorr = higher / lower classifier-free guidance,
midjourney_normal, midjourney_lowstep). DALLE2_normal covers 290 prompts and the two
midjourney configurations 296 each; 287 prompts have all 10. Each image has two mean
opinion scores from human raters, normalised so that higher is better (about 0-5):
perceptual quality (``mos_quality``) and text-image alignment (``mos_align``), each with
the raters' standard deviation.

The configuration of an image is the prefix of its file name before the last
``_NNN.jpg``; NNN is the prompt's index (0-299), the same for every configuration (the
prompt text is identical across configurations too). It is the index of ``quality``.
The prompt text already contains the optional adjectives (``adj1``, ``adj2``) and style
that the ``frame`` lists separately (empty string where none). The exact step counts and
guidance scales of the variants are given in the AGIQA-3K paper (Li et al., "AGIQA-3K: An
Open Database for AI-Generated Image Quality Assessment", arXiv 2306.04717, Sec. III),
not in the file.

Source: https://github.com/{_REPO} at commit {_COMMIT}, file data.csv,
sha256 {AGIQA3K.sha256}.
License: MIT.
"""


def _read(path: os.PathLike):
    import pandas as pd

    # keep_default_na=False: empty adjectives stay "" and no prompt text turns into NaN.
    df = pd.read_csv(path, keep_default_na=False, dtype={c: str for c in _TEXT_COLUMNS})
    parts = df["name"].str.extract(_NAME_RE)
    bad = df.loc[parts["config"].isna(), "name"].tolist()
    if bad:
        raise ValueError(f"{path}: image names not of the form <configuration>_<NNN>.jpg: {bad[:5]}")
    df["config"] = parts["config"]
    df["prompt_id"] = parts["index"].astype(int)
    dupes = df.duplicated(["config", "prompt_id"])
    if dupes.any():
        raise ValueError(f"{path}: duplicated images {df.loc[dupes, 'name'].tolist()[:5]}")
    for col in ("prompt", "adj1", "adj2", "style"):
        varying = df.groupby("prompt_id")[col].nunique()
        if (varying > 1).any():
            raise ValueError(
                f"{path}: column {col!r} differs between configurations for prompt indices "
                f"{varying.index[varying > 1].tolist()[:5]}"
            )
    return df


def load_agiqa3k(
    target: str = "alignment",
    complete_only: bool = True,
    cost_unit: str = "usd",
    data_home: str | os.PathLike | None = None,
    download: bool = True,
) -> Bunch:
    """Load AGIQA-3K: 300 prompts x 10 generator configurations with human MOS.

    The raw upstream file (``data.csv`` of ``lcysyzxdxc/AGIQA-3k-Database``, pinned to a
    commit and a sha256) is found or downloaded by :func:`fetch_file`.

    Parameters
    ----------
    target : {"alignment", "quality"}, default="alignment"
        Which score fills ``quality``: text-image alignment (``mos_align``) or perceptual
        quality (``mos_quality``). Both are normalised MOS, higher is better.
    complete_only : bool, default=True
        If True, keep only the prompts that have an image from every generator of the
        registry (with ``cost_unit="usd"``: the 287 prompts with all 10 configurations), so
        ``quality`` has no missing value. If False, keep every prompt rendered by at least
        one of them (all 300); cells of a configuration that did not render a prompt
        (DALLE2_normal misses 10, the midjourney ones 4 each) are NaN in ``quality`` and
        ``std``.
    cost_unit : {"usd", "flops"}, default="usd"
        Unit of the generator costs; the registry decides which configurations have a cost
        in that unit, and ``quality`` keeps only those columns: all ten with ``"usd"``, the
        four Stable Diffusion 1.5 ones (sd1.5_normal, sd1.5_lowstep, sd1.5_highcorr,
        sd1.5_lowcorr, rendered for all 300 prompts) with ``"flops"``.
    data_home : str or path-like, default=None
        Download cache folder; see :func:`get_data_home`.
    download : bool, default=True
        Whether to download the file when it is not found locally.

    Returns
    -------
    data : sklearn.utils.Bunch
        Dictionary-like object with the fields:

        prompts : list of str, length n
            The prompt texts (adjectives and style included), ordered by prompt index.
        prompt_ids : list of int, length n
            The prompt indices (0-299), the index of ``quality``.
        quality : pandas.DataFrame of shape (n, K)
            The MOS chosen by ``target``; index ``prompt_id``, columns the configuration
            names in registry order.
        std : pandas.DataFrame of shape (n, K)
            The raters' standard deviation of that MOS, same layout.
        frame : pandas.DataFrame of shape (n, 4)
            Prompt metadata, index ``prompt_id``: ``prompt``, ``adj1``, ``adj2``, ``style``
            (empty string where the prompt has none).
        target : str
            The target.
        generators : GeneratorRegistry
            The K configurations with their costs in ``cost_unit``.
        costs : ndarray of shape (K,)
            ``generators.costs``.
        cost_unit : str
            The cost unit.
        path : pathlib.Path
            The file that was read.
        description : str
            The dataset's description, source, license and cost assumptions.

    Raises
    ------
    ValueError
        If ``target`` or ``cost_unit`` is not one of the valid values.

    Examples
    --------
    >>> from costroute.datasets import load_agiqa3k
    >>> data = load_agiqa3k(target="quality")  # doctest: +SKIP
    >>> data.quality.shape  # doctest: +SKIP
    (287, 10)
    """
    import pandas as pd
    from sklearn.utils import Bunch

    if not isinstance(target, str) or target not in TARGETS:
        raise ValueError(f"target must be one of {list(TARGETS)}, got {target!r}")
    if cost_unit not in COST_UNITS:
        raise ValueError(f"cost_unit must be one of {list(COST_UNITS)}, got {cost_unit!r}")
    from ._cost_tables import agiqa3k_generators

    registry, assumptions = agiqa3k_generators(cost_unit)
    path = fetch_file(AGIQA3K, data_home=data_home, download=download)
    df = _read(path)
    names = registry.names
    unknown = [n for n in names if n not in set(df["config"])]
    if unknown:
        raise ValueError(
            f"{path}: no images for generators {unknown}; the file has configurations {sorted(set(df['config']))}"
        )
    mos_col, std_col = TARGETS[target]
    df = df[df["config"].isin(names)]
    quality = df.pivot(index="prompt_id", columns="config", values=mos_col)
    std = df.pivot(index="prompt_id", columns="config", values=std_col)
    quality = quality.reindex(columns=names).sort_index()
    std = std.reindex(columns=names).sort_index()
    if complete_only:
        keep = quality.notna().all(axis=1)
        quality, std = quality[keep], std[keep]
    for m in (quality, std):
        m.index.name = "prompt_id"
        m.columns = pd.Index(names, name="generator")
    frame = (
        df.drop_duplicates("prompt_id")
        .set_index("prompt_id")[["prompt", "adj1", "adj2", "style"]]
        .reindex(quality.index)
    )
    description = f"{_DESCRIPTION}\nCosts ({cost_unit})\n{'-' * (len(cost_unit) + 8)}\n\n{assumptions.strip()}\n"
    return Bunch(
        prompts=frame["prompt"].tolist(),
        prompt_ids=quality.index.tolist(),
        quality=quality,
        std=std,
        frame=frame,
        target=target,
        generators=registry,
        costs=registry.costs,
        cost_unit=cost_unit,
        path=path,
        description=description,
    )
