"""Tests of costroute.costs._cache: the FLOP counts kept on disk between processes."""

import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
import warnings

import pytest

torch = pytest.importorskip("torch")

from costroute.costs import (  # noqa: E402  # noqa: E402
    FLOP_COUNTER_VERSION,
    FlopCacheWarning,
    _cache,
    _counting,
    component_cost,
    count_flops,
    count_parameters,
    diffusion_cost_from_configs,
    flop_cache_path,
    pipeline_cost,
)


def _clip(vocab_size=1000):
    return {
        "_class_name": "CLIPTextModel",
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "vocab_size": vocab_size,
        "max_position_embeddings": 77,
    }


def _counted_directly(config):
    """(FLOPs, parameters) of the tiny CLIP text encoder, counted here without any cache."""
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        model = CLIPTextModel(CLIPTextConfig(**config))
        ids = torch.zeros(1, 77, dtype=torch.long)
    return count_flops(model, input_ids=ids), count_parameters(model)


def _request(config):
    from costroute.costs._configs import _config_key

    return ("CLIPTextModel", _config_key(config), (77,))


def _forget_memory():
    _counting._memory.clear()


@pytest.fixture
def cache_file(tmp_path, monkeypatch):
    """The disk cache turned on in an empty data home; counts in memory forgotten (and restored after)."""
    monkeypatch.setenv("COSTROUTE_FLOPS_CACHE", "1")
    monkeypatch.setenv("COSTROUTE_DATA_HOME", str(tmp_path))
    kept = dict(_counting._memory)
    _forget_memory()
    yield tmp_path / "flop-counts.json"
    _forget_memory()
    _counting._memory.update(kept)


def _entries(path):
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    for key, value in data.items():
        assert isinstance(key, str) and isinstance(value, list) and len(value) == 2
        assert all(isinstance(v, int) and v >= 0 for v in value)
    return data


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or ".tmp" in p.name)


def test_path_and_switch(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTROUTE_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COSTROUTE_FLOPS_CACHE", "1")
    assert flop_cache_path() == tmp_path / "home" / "flop-counts.json"
    assert not (tmp_path / "home").exists()  # nothing created by asking
    for off in ("0", "false", "No", "off"):
        monkeypatch.setenv("COSTROUTE_FLOPS_CACHE", off)
        assert flop_cache_path() is None


def test_counts_are_saved_on_disk_and_reused(cache_file):
    config = _clip()
    fresh = component_cost(config, name="text_encoder", calls=1, text_tokens=77)
    assert (fresh.flops_per_call, fresh.params) == _counted_directly(config)
    saved = _entries(cache_file)
    assert saved == {_cache._entry_key(_request(config)): [fresh.flops_per_call, fresh.params]}
    # a later process reads the saved count instead of counting: poison it to prove the read
    key = next(iter(saved))
    cache_file.write_text(json.dumps({key: [123, 456]}))
    _forget_memory()
    assert component_cost(config, name="text_encoder", calls=1, text_tokens=77).flops_per_call == 123


def test_disabled_cache_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTROUTE_FLOPS_CACHE", "0")
    monkeypatch.setenv("COSTROUTE_DATA_HOME", str(tmp_path))
    _forget_memory()
    component_cost(_clip(1001), text_tokens=77)
    assert list(tmp_path.iterdir()) == []


BAD_FILES = {
    "list": "[]",
    "null": "null",
    "string": '"x"',
    "number": "42",
    "truncated": '{"abc": [12, 3',
    "empty": "",
    "short pair": '{"abc": [12]}',
    "negative": '{"abc": [-12, 3]}',
    "float": '{"abc": [1.5, 3]}',
    "bool": '{"abc": [true, 3]}',
    "string value": '{"abc": "12,3"}',
    "null value": '{"abc": null}',
}


@pytest.mark.parametrize("content", list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_invalid_cache_file_warns_counts_and_is_repaired(cache_file, content):
    cache_file.write_text(content)
    config = _clip()
    with pytest.warns(FlopCacheWarning, match=rf"FLOP count cache {cache_file} is invalid"):
        cost = component_cost(config, text_tokens=77)
    assert (cost.flops_per_call, cost.params) == _counted_directly(config)
    assert _entries(cache_file) == {_cache._entry_key(_request(config)): [cost.flops_per_call, cost.params]}
    assert _leftovers(cache_file.parent) == []


def test_non_utf8_cache_file_is_repaired(cache_file):
    cache_file.write_bytes(b"\xff\xfe{\x00")
    config = _clip()
    with pytest.warns(FlopCacheWarning, match="is invalid: it is not UTF-8"):
        cost = component_cost(config, text_tokens=77)
    assert (cost.flops_per_call, cost.params) == _counted_directly(config)
    assert len(_entries(cache_file)) == 1


def test_invalid_entries_are_dropped_and_valid_ones_kept(cache_file):
    config, other = _clip(), _clip(1002)
    good_key = _cache._entry_key(_request(other))
    cache_file.write_text(json.dumps({good_key: [7, 8], "bad": [1, -1], "worse": {"flops": 1}}))
    with pytest.warns(FlopCacheWarning, match=r"2 of its 3 entries are not a \[flops, parameters\] pair"):
        cost = component_cost(config, text_tokens=77)
    assert (cost.flops_per_call, cost.params) == _counted_directly(config)
    assert _entries(cache_file) == {
        good_key: [7, 8],
        _cache._entry_key(_request(config)): [cost.flops_per_call, cost.params],
    }
    # the valid entry is used as it is
    assert component_cost(other, text_tokens=77).flops_per_call == 7


def test_invalid_file_is_repaired_even_when_nothing_is_counted(cache_file):
    config = _clip()
    key = _cache._entry_key(_request(config))
    cache_file.write_text(json.dumps({key: [5, 6], "junk": "x"}))
    with pytest.warns(FlopCacheWarning, match="1 of its 2 entries"):
        assert component_cost(config, text_tokens=77).flops_per_call == 5
    assert _entries(cache_file) == {key: [5, 6]}


def test_invalid_cache_does_not_break_a_pipeline_cost(cache_file):
    """The trial's crash: a cache holding ``[]`` made pipeline_cost raise a raw TypeError."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
    )
    args = (dict(unet.config), dict(vae.config), [_clip()])
    kwargs = dict(height=16, width=16, steps=3, progress=False)
    cache_file.write_text("[]")
    with pytest.warns(FlopCacheWarning, match="holds a JSON list"):
        cost = diffusion_cost_from_configs(*args, **kwargs)
    assert len(_entries(cache_file)) == 3
    os.environ["COSTROUTE_FLOPS_CACHE"] = "0"  # restored by the fixture's monkeypatch
    _forget_memory()
    assert diffusion_cost_from_configs(*args, **kwargs) == cost


def test_counts_of_another_counter_or_torch_version_are_ignored(cache_file):
    config = _clip()
    request = _request(config)
    kind, config_key, shape = request
    # the key format before the counter version was part of it
    unversioned = hashlib.sha256(
        json.dumps([kind, config_key, list(shape), torch.__version__], sort_keys=True).encode()
    ).hexdigest()
    stale = {
        _cache._entry_key(request, counter_version=FLOP_COUNTER_VERSION - 1): [123, 456],
        _cache._entry_key(request, counter_version=FLOP_COUNTER_VERSION + 1): [124, 456],
        _cache._entry_key(request, torch_version="1.0.0"): [125, 456],
        unversioned: [126, 456],
    }
    cache_file.write_text(json.dumps(stale))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stale entries are valid entries: no warning
        cost = component_cost(config, text_tokens=77)
    assert (cost.flops_per_call, cost.params) == _counted_directly(config)
    saved = _entries(cache_file)
    assert saved == {**stale, _cache._entry_key(request): [cost.flops_per_call, cost.params]}


def test_key_depends_on_the_counter_version(monkeypatch):
    request = _request(_clip())
    before = _cache._entry_key(request)
    monkeypatch.setattr(_cache, "FLOP_COUNTER_VERSION", FLOP_COUNTER_VERSION + 1)
    assert _cache._entry_key(request) != before
    assert _cache._entry_key(request, counter_version=FLOP_COUNTER_VERSION) == before


def test_write_is_atomic_and_leaves_no_temporary_file(cache_file):
    component_cost(_clip(), text_tokens=77)
    component_cost(_clip(1003), text_tokens=77)
    assert len(_entries(cache_file)) == 2
    assert _leftovers(cache_file.parent) == []
    assert oct(cache_file.stat().st_mode & 0o777) == oct(0o644)


def test_failed_replace_leaves_no_temporary_file_and_does_not_raise(cache_file):
    """The cache path is a folder: reading and replacing it fail; counting goes on, nothing is left behind."""
    cache_file.mkdir()
    (cache_file / "keep").write_text("x")  # a non-empty folder cannot be replaced
    config = _clip()
    with pytest.warns(FlopCacheWarning) as caught:
        cost = component_cost(config, text_tokens=77)
    messages = " ".join(str(w.message) for w in caught)
    assert f"could not read the FLOP count cache {cache_file}" in messages
    assert f"could not write the FLOP count cache {cache_file}" in messages
    assert (cost.flops_per_call, cost.params) == _counted_directly(config)
    assert _leftovers(cache_file.parent) == []
    assert (cache_file / "keep").read_text() == "x"


def test_unwritable_data_home_warns_once_and_counts_in_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    home = blocker / "home"  # cannot be created, even by root
    monkeypatch.setenv("COSTROUTE_FLOPS_CACHE", "1")
    monkeypatch.setenv("COSTROUTE_DATA_HOME", str(home))
    kept = dict(_counting._memory)
    _forget_memory()
    try:
        config = _clip()
        with pytest.warns(FlopCacheWarning, match=rf"could not write the FLOP count cache {home / 'flop-counts.json'}"):
            cost = component_cost(config, text_tokens=77)
        assert (cost.flops_per_call, cost.params) == _counted_directly(config)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            component_cost(config, text_tokens=77)  # kept in memory: no count, no warning
            component_cost(_clip(1004), text_tokens=77)  # another count: the write problem was already reported
    finally:
        _forget_memory()
        _counting._memory.update(kept)


def _count_many(first):
    for vocab in range(first, first + 25):
        component_cost(_clip(vocab), text_tokens=77)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method")
def test_processes_writing_at_once_lose_no_count(cache_file):
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_count_many, args=(2000 + 100 * i,)) for i in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert len(_entries(cache_file)) == 75
    assert _leftovers(cache_file.parent) == []


def test_warm_cache_needs_no_torch(cache_file, tmp_path):
    """Counts on disk are enough: a later process costs a pipeline without importing torch."""
    cost = pipeline_cost("sd15", steps=20, progress=False)
    assert len(_entries(cache_file)) == 3
    code = (
        "import sys; from costroute.costs import pipeline_cost; "
        "c = pipeline_cost('sd15', steps=20); print(c.total, 'torch' in sys.modules)"
    )
    env = {**os.environ, "COSTROUTE_FLOPS_CACHE": "1", "COSTROUTE_DATA_HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert run.stdout.split() == [str(cost.total), "False"]
    assert run.stderr == ""  # nothing counted: no progress bar
