"""The day-one vocabulary and the tagger that sums class probabilities into words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from eyes.ml.data import make_imagenet_words
from eyes.ml.embedder import Embedder
from eyes.ml.errors import ModelFileError
from eyes.ml.imagenet_words import ImageNetTagger, default_words_file, load_class_names

WORDS: list[list[str]] = json.loads(default_words_file().read_text())


def test_class_names_are_the_standard_imagenet_order() -> None:
    names = load_class_names()
    assert len(names) == 1000
    assert names[0] == "tench" and names[1] == "goldfish"
    assert names[281:286] == ["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]
    assert names[967] == "espresso" and names[999] == "toilet tissue"


def test_words_file_is_what_the_script_generates() -> None:
    assert make_imagenet_words.build(load_class_names()) == WORDS


def test_words_are_plain_lower_case() -> None:
    assert len(WORDS) == 1000
    for words in WORDS:
        assert words and len(words) == len(set(words))
        for word in words:
            assert word == word.strip().lower() and "," not in word and "  " not in word


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (281, {"tabby cat", "cat", "pet", "animal"}),
        (282, {"tiger cat", "cat"}),
        (207, {"golden retriever", "retriever", "dog"}),
        (2, {"great white shark", "shark", "fish"}),
        (15, {"robin", "bird"}),
        (62, {"rock python", "snake", "reptile"}),
        (817, {"sports car", "car", "vehicle"}),
        (967, {"espresso", "coffee", "drink"}),
        (954, {"banana", "fruit", "food"}),
        (404, {"airliner", "airplane", "aircraft"}),
    ],
)
def test_classes_carry_broader_words(index: int, expected: set[str]) -> None:
    assert expected <= set(WORDS[index])


def test_every_dog_breed_is_a_dog_and_only_cats_are_cats() -> None:
    assert all("dog" in WORDS[i] for i in range(151, 269))
    assert sum("dog" in words for words in WORDS) == 118
    assert {i for i, words in enumerate(WORDS) if "cat" in words} == set(range(281, 286))
    assert "cat" not in WORDS[383]  # "Madagascar cat" is a lemur
    assert "airplane" not in WORDS[726]  # "plane" is a carpenter's plane
    assert "bear" not in WORDS[850]  # a teddy bear is a toy


def make_tagger(tmp_path: Path, words: list[list[str]], logits: np.ndarray) -> ImageNetTagger:
    """A tagger whose head turns embedding e_i (a one-hot of size n) into the given logits row."""
    n_classes = len(words)
    weight = np.asarray(logits, dtype=np.float32).T  # (classes, dim): one-hot input picks a row
    np.savez(tmp_path / "head.npz", W=weight, b=np.zeros(n_classes, dtype=np.float32))
    (tmp_path / "words.json").write_text(json.dumps(words))
    return ImageNetTagger(tmp_path / "head.npz", tmp_path / "words.json")


def test_word_confidence_is_the_sum_of_its_classes(tmp_path: Path) -> None:
    words = [["beagle", "dog"], ["pug", "dog"], ["tabby", "cat"], ["espresso", "coffee"]]
    logits = np.log(np.array([[0.3, 0.3, 0.3, 0.1], [0.05, 0.05, 0.1, 0.8]]))
    tagger = make_tagger(tmp_path, words, logits)
    embeddings = np.eye(2, dtype=np.float32)
    tags = tagger.tags(embeddings, threshold=0.2, top_k=10)
    assert [w for w, _ in tags[0]] == ["dog", "beagle", "pug", "tabby", "cat"]
    assert dict(tags[0])["dog"] == pytest.approx(0.6)
    assert [w for w, _ in tags[1]] == ["espresso", "coffee"]
    assert dict(tags[1])["coffee"] == pytest.approx(0.8)
    assert all(a >= b for row in tags for (_, a), (_, b) in zip(row, row[1:], strict=False))


def test_threshold_and_top_k(tmp_path: Path) -> None:
    words = [["a", "x"], ["b", "x"], ["c"]]
    tagger = make_tagger(tmp_path, words, np.log(np.array([[0.5, 0.3, 0.2]])))
    embedding = np.ones((1, 1), dtype=np.float32)
    assert tagger.tags(embedding, threshold=0.0, top_k=2) == [
        [("x", pytest.approx(0.8)), ("a", pytest.approx(0.5))]
    ]
    assert [w for w, _ in tagger.tags(embedding, threshold=0.25, top_k=10)[0]] == ["x", "a", "b"]
    assert tagger.tags(embedding, threshold=0.9, top_k=10) == [[]]
    assert tagger.tags(embedding, threshold=0.0, top_k=0) == [[]]
    assert tagger.tags(np.zeros((0, 1), dtype=np.float32), threshold=0.0, top_k=3) == []


def test_probabilities_are_stable_for_huge_logits(tmp_path: Path) -> None:
    tagger = make_tagger(tmp_path, [["a"], ["b"], ["c"]], np.array([[1000.0, 1000.0, -1000.0]]))
    assert np.allclose(tagger.probabilities(np.ones((1, 1), dtype=np.float32)), [[0.5, 0.5, 0.0]])
    assert tagger.word_scores(np.ones((1, 1), dtype=np.float32)).tolist() == [[0.5, 0.5, 0.0]]


def test_missing_head_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError) as err:
        ImageNetTagger(tmp_path / "imagenet-head.npz")
    assert str(tmp_path / "imagenet-head.npz") in str(err.value)
    assert "eyes models export-backbone" in str(err.value)


@pytest.mark.slow
def test_head_checked_against_its_card(backbone_dir: Path, tmp_path: Path) -> None:
    for name in ("imagenet-head.npz", "backbone.json"):
        (tmp_path / name).write_bytes((backbone_dir / name).read_bytes())
    head = tmp_path / "imagenet-head.npz"
    data_bytes = bytearray(head.read_bytes())
    data_bytes[-100] ^= 0xFF
    head.write_bytes(bytes(data_bytes))
    with pytest.raises(ModelFileError, match="checksum") as err:
        ImageNetTagger(head)
    assert str(head) in str(err.value)


@pytest.mark.slow
def test_chelsea_is_a_cat_and_coffee_is_coffee(embedder: Embedder, imagenet: ImageNetTagger) -> None:
    embeddings = embedder.embed_images([Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())])
    cat, coffee = (dict(row) for row in imagenet.tags(embeddings, threshold=0.1, top_k=10))
    assert cat["cat"] > 0.8 and "dog" not in cat
    assert coffee["coffee"] > 0.9 and coffee["espresso"] > 0.9
    assert imagenet.version.startswith("imagenet-")
