"""collect() refuses bad prompts and a file that is not a store before it creates or changes any file."""

from __future__ import annotations

import pytest

from costroute.collect import collect
from costroute.collect._arguments import check_arguments


@pytest.mark.parametrize(
    "prompts, match",
    [
        (["", "y"], r"prompts\[0\] is empty; every prompt must hold some text"),
        (["x", "  \t"], r"prompts\[1\] is whitespace only \('  \\t'\); every prompt must hold some text"),
        (["x", "\u3000"], r"prompts\[1\] is whitespace only"),
        (["bad \udcff", "y"], r"prompts\[0\] holds the lone surrogate '\\udcff' at character 4"),
    ],
)
def test_bad_prompts_are_refused_before_the_store_exists(tmp_path, callables, bright, prompts, match):
    gens, counters = callables
    store = tmp_path / "run.sqlite"
    with pytest.raises(ValueError, match=match):
        collect(prompts, gens, [bright], store, progress=False)
    assert not store.exists() and list(tmp_path.iterdir()) == []
    assert counters["cheap"].calls == counters["dear"].calls == 0


def test_a_store_that_is_not_a_store_is_refused_by_the_argument_checks(tmp_path, callables, bright):
    gens, counters = callables
    text = tmp_path / "notes.txt"
    text.write_text("first line\nsecond line\n")
    with pytest.raises(
        ValueError,
        match=r"'.*notes\.txt' is not a costroute collection store: file is not a "
        r"database; pass a new file name",
    ):
        check_arguments(["a cat"], gens, [bright], text)
    with pytest.raises(ValueError, match="is not a costroute collection store"):
        collect(["a cat"], gens, [bright], text, progress=False)
    assert text.read_text() == "first line\nsecond line\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.txt"
    ]
    assert counters["cheap"].calls == counters["dear"].calls == 0
    # an empty file is where a new store goes
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    check_arguments(["a cat"], gens, [bright], empty)
    assert collect(["a cat"], gens, [bright], empty, progress=False).complete
