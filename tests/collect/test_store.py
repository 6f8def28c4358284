"""CollectionStore: a batch is all or nothing, whatever stops it part-way (a constraint, a trigger, Ctrl-C, a failed
commit)."""

from __future__ import annotations

import sqlite3

import pytest

from costroute.collect import CollectionStore
from costroute.collect._store import NewImage, NewScore

TABLES = ("meta", "prompts", "generators", "scorers", "images", "scores")


def dump(query) -> dict[str, list[tuple]]:
    """Every row of every table, through ``query`` (the store's own connection, or another one)."""
    return {t: sorted(query(f"SELECT * FROM {t}")) for t in TABLES}


def other_connection(path):
    def query(sql):
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchall()

    return query


@pytest.fixture
def store(tmp_path):
    """A store with two prompts, one generator, one scorer and one scored image."""
    db = CollectionStore(tmp_path / "run.sqlite")
    pids = db.register_prompts(["a red cat", "two blue dogs"])
    gid = db.register_generator("g-key", {"name": "g", "class": "CallableGenerator", "cost_unit": "usd"}, 1.0)
    sid = db.register_scorer("s-key", "s", {"class": "CallableScorer", "cost_unit": "usd"}, 0.1)
    db.write([NewImage(pids[0], gid, 0, 11, 1.0, 0.5, None, [(sid, 0.25, 0.01)])])
    db.ids = (pids, gid, sid)
    yield db
    db.close()


def batch(store, second_score=0.75, second_scores=None):
    """Two new images with their scores (the second one's as given)."""
    (pids, gid, sid) = store.ids
    return [
        NewImage(pids[1], gid, 0, 12, 1.0, 0.5, "/x/1.png", [(sid, 0.5, 0.01)]),
        NewImage(
            pids[0],
            gid,
            1,
            13,
            1.0,
            0.5,
            "/x/2.png",
            second_scores if second_scores is not None else [(sid, second_score, 0.01)],
        ),
    ]


class InterruptedScores:
    """The scores of an image, where Ctrl-C arrives after the first one was inserted."""

    def __init__(self, first):
        self.first = first

    def __iter__(self):
        yield self.first
        raise KeyboardInterrupt


def fail_by_trigger(store):
    with sqlite3.connect(store.path) as conn:  # a real constraint of the database, raised inside the batch
        conn.execute(
            "CREATE TRIGGER refuse_13 BEFORE INSERT ON scores WHEN NEW.value = 13 "
            "BEGIN SELECT RAISE(ABORT, 'score 13 refused'); END"
        )
    return sqlite3.IntegrityError, "score 13 refused", batch(store, second_score=13.0), None


def fail_by_interrupt(store):
    _, _, sid = store.ids
    return KeyboardInterrupt, None, batch(store, second_scores=InterruptedScores((sid, 0.5, 0.01))), None


def fail_at_commit(store):
    # a foreign key checked only at COMMIT: every insert succeeds, then the commit itself fails (the pragma is set
    # right before the write: SQLite turns it off at every commit, a read's included)
    def arm():
        store.query("PRAGMA defer_foreign_keys = ON")
        assert store.query("PRAGMA defer_foreign_keys") == [(1,)]

    return (
        sqlite3.IntegrityError,
        "FOREIGN KEY constraint failed",
        batch(store, second_scores=[(999, 0.5, 0.01)]),
        arm,
    )


@pytest.mark.parametrize("fail", [fail_by_trigger, fail_by_interrupt, fail_at_commit])
def test_a_batch_that_fails_part_way_leaves_the_store_exactly_as_before(store, fail):
    before = dump(store.query)
    assert len(before["images"]) == 1 and len(before["scores"]) == 1
    error, message, images, arm = fail(store)
    before = dump(store.query)  # a trigger is part of the schema, not of the rows compared
    if arm is not None:
        arm()
    with pytest.raises(error, match=message):
        store.write(images, [NewScore(before["images"][0][0], store.ids[2], 0.9, 0.01)])
    # nothing of the batch, neither through the store's own connection nor through another one
    assert dump(store.query) == before
    assert dump(other_connection(store.path)) == before
    # the connection is usable and not inside a leftover transaction: the next batch commits on its own
    assert store.write(batch(store)[:1]) == (1, 1)
    after = dump(other_connection(store.path))
    assert len(after["images"]) == 2 and len(after["scores"]) == 2
    assert dump(store.query) == after


def test_a_store_closed_after_a_failed_batch_keeps_nothing_of_it(store):
    before = dump(store.query)
    _, _, images, _ = fail_by_interrupt(store)
    with pytest.raises(KeyboardInterrupt):
        store.write(images)
    store.close()
    with CollectionStore(store.path, create=False) as reopened:
        assert dump(reopened.query) == before


def test_append_takes_the_next_free_seed_index_above_collects_and_registers_its_prompt(store):
    from costroute.collect._store import AppendedImage

    (pids, gid, sid) = store.ids
    ids = store.append(
        [
            AppendedImage("a red cat", gid, 21, 1.0, 0.3, [(sid, 0.5, 0.01)]),  # collect's index 0 is stored
            AppendedImage("a red cat", gid, 22, 1.0, 0.3),
            AppendedImage("a new prompt", gid, 23, 1.0, 0.3, [(sid, 0.9, 0.01)]),
        ]
    )
    base = 1_000_000  # never an index collect counts up to
    assert [index for _, index in ids] == [base, base + 1, base]
    rows = store.query(
        "SELECT p.text, i.seed_index, i.seed FROM images i JOIN prompts p ON p.id = i.prompt_id ORDER BY i.id"
    )
    assert rows[-3:] == [("a red cat", base, 21), ("a red cat", base + 1, 22), ("a new prompt", base, 23)]
    assert store.counts()["scores"] == 3


def test_an_append_that_fails_leaves_nothing_not_even_its_prompt(store):
    from costroute.collect._store import AppendedImage

    before = dump(store.query)
    (pids, gid, sid) = store.ids
    with pytest.raises(sqlite3.IntegrityError):
        store.append([AppendedImage("another prompt", gid, 5, 1.0, 0.3), AppendedImage("x", 999, 6, 1.0, 0.3)])
    assert dump(store.query) == before
