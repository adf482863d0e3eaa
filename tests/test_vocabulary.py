"""The vocabulary and the labels it reads: the tag hierarchy, who may shape it, and which tags
become classes. Labels are built directly (a photo per content hash), so no network runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from eyes.config import Settings
from eyes.context import Context, build_context
from eyes.errors import BadRequest, Forbidden
from eyes.services import vocabulary
from eyes.services.accounts import create_user
from eyes.services.labels import Labels, class_vocabulary
from eyes.services.vocabulary import Hierarchy


@dataclass
class Person:
    id: int
    username: str
    is_admin: bool


ADMIN, MEMBER = Person(1, "root", True), Person(2, "mia", False)


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = build_context(settings.model_copy(update={"min_labels_per_tag": 2, "min_owners_per_tag": 2}))
    # ADMIN's row, who approvals name
    assert create_user(context, ADMIN.username, "a long password", admin=True).id == ADMIN.id
    yield context
    context.close()


def parents(ctx: Context) -> dict[str, str]:
    with ctx.sessions() as session:
        return vocabulary.hierarchy(session).parents


def test_a_hierarchy_knows_ancestors_descendants_and_survives_a_cycle() -> None:
    tree = Hierarchy({"granny-smith": "apple", "apple": "fruit", "pear": "fruit"})
    assert tree.ancestors("granny-smith") == ["apple", "fruit"]
    assert tree.descendants("fruit") == {"apple", "pear", "granny-smith"}
    assert tree.expand({"granny-smith", "pear"}) == {"granny-smith", "apple", "fruit", "pear"}
    assert tree.expand(set()) == set()
    loop = Hierarchy({"a": "b", "b": "a"})  # refused when set, but a walk must still end
    assert loop.ancestors("a") == ["b", "a"]


def test_administrators_nest_tags_and_a_cycle_is_refused(ctx: Context) -> None:
    vocabulary.set_parent(ctx, ADMIN, "Granny Smith", "apple")
    vocabulary.set_parent(ctx, None, "apple", "fruit")  # None: the operator at the command line
    assert parents(ctx) == {"granny smith": "apple", "apple": "fruit"}
    with pytest.raises(BadRequest, match="cycle"):
        vocabulary.set_parent(ctx, ADMIN, "fruit", "granny smith")
    vocabulary.set_parent(ctx, ADMIN, "apple", None)
    assert parents(ctx) == {"granny smith": "apple"}
    with ctx.sessions() as session:
        approved = vocabulary.approved_tags(session)
    assert {"apple", "fruit"} <= approved, "a parent an administrator names needs no second approval"
    assert "granny smith" not in approved


def test_members_cannot_shape_the_vocabulary(ctx: Context) -> None:
    for change in (
        lambda: vocabulary.approve(ctx, MEMBER, ["cat"]),
        lambda: vocabulary.set_parent(ctx, MEMBER, "cat", "animal"),
        lambda: vocabulary.import_hierarchy(ctx, MEMBER, "cat,animal\n"),
    ):
        with pytest.raises(Forbidden):
            change()
    assert parents(ctx) == {}


def test_a_hierarchy_file_skips_its_header_and_folds_a_class_named_like_its_parent(ctx: Context) -> None:
    text = "class,coarse_class,category\nGranny-Smith,Apple,Fruit\nAvocado,Avocado,Fruit\n"
    assert vocabulary.import_hierarchy(ctx, ADMIN, text) == 3
    assert parents(ctx) == {"granny-smith": "apple", "apple": "fruit", "avocado": "fruit"}
    with pytest.raises(BadRequest, match="line 2: 'pear' has two parents"):
        vocabulary.import_hierarchy(ctx, ADMIN, "pear,fruit\npear,tree\n")
    with pytest.raises(BadRequest, match="no 'tag,parent' rows"):
        vocabulary.import_hierarchy(ctx, ADMIN, "just one column\n")


def labels_of(*photos: tuple[str, int, set[str]]) -> Labels:
    """Training-grade yes-labels: (content hash, owner, tags) per photo."""
    labels = Labels()
    for sha, owner, names in photos:
        labels.positives[sha] |= names
        for name in names:
            labels.owners[name].add(owner)
    return labels


def test_a_tag_becomes_a_class_with_enough_photos_from_enough_owners_and_an_approval(ctx: Context) -> None:
    labels = labels_of(
        ("a" * 64, 1, {"cat"}), ("b" * 64, 2, {"cat"}),  # two photos, two owners
        ("c" * 64, 1, {"dog"}), ("d" * 64, 1, {"dog"}), ("e" * 64, 1, {"dog"}),  # one owner alone
        ("f" * 64, 1, {"owl"}), ("g" * 64, 2, {"owl"}),
    )  # fmt: skip
    vocabulary.approve(ctx, ADMIN, ["Cat"])
    with ctx.sessions() as session:
        vocab = class_vocabulary(session, labels, ctx.settings, known=set())
        assert (vocab.classes, vocab.waiting) == (["cat"], ["owl"]), "one account cannot teach alone"
        assert class_vocabulary(session, labels, ctx.settings, known={"owl"}).classes == ["cat", "owl"]
        vocabulary.approve(ctx, ADMIN, ["cat"], approved=False)
        assert class_vocabulary(session, labels, ctx.settings, known=set()).classes == []
        open_settings = ctx.settings.model_copy(update={"open_vocabulary": True})
        assert class_vocabulary(session, labels, open_settings, known=set()).classes == ["cat", "owl"]


def test_labels_count_each_image_once_however_often_it_was_uploaded() -> None:
    labels = labels_of(("a" * 64, 1, {"cat", "pet"}), ("a" * 64, 2, {"cat"}), ("b" * 64, 1, {"cat"}))
    labels.negatives["b" * 64].add("dog")
    assert labels.positive_counts() == {"cat": 2, "pet": 1}
    assert labels.count == 4
