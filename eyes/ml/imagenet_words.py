"""The day-one tagger: the backbone's own ImageNet classifier, its 1000 classes mapped to plain words.

Before the platform has trained a head of its own, tags come from here. Each class lists the
words a person would tag it with (`data/imagenet_words.json`: "tabby cat", "cat", "pet",
"animal"), and a word's confidence is the sum of the softmax probabilities of every class that
lists it, so "dog" collects all 118 breeds. Pure numpy.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np

from eyes.ml.errors import backbone_file_error
from eyes.ml.files import CARD_FILE, read_model_file

Tags = list[tuple[str, float]]


def _data_file(name: str) -> Path:
    return Path(str(resources.files("eyes.ml") / "data" / name))


def default_words_file() -> Path:
    """The vocabulary shipped with the package."""
    return _data_file("imagenet_words.json")


def load_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in standard index order (as torchvision spells them)."""
    return _data_file("imagenet_classes.txt").read_text().splitlines()


class ImageNetTagger:
    """Tags from the pretrained ImageNet head (`imagenet-head.npz`: `W` (1000, 1280), `b` (1000,))."""

    def __init__(self, head_npz: Path | str, words_json: Path | str | None = None) -> None:
        self.head_path = Path(head_npz)
        words_path = Path(words_json) if words_json is not None else default_words_file()
        head_bytes = self._read_head()
        try:
            with np.load(self.head_path, allow_pickle=False) as f:
                self.weight = np.ascontiguousarray(f["W"], dtype=np.float32)
                self.bias = np.ascontiguousarray(f["b"], dtype=np.float32)
        except (OSError, ValueError, KeyError) as err:
            raise backbone_file_error(self.head_path, f"cannot be read ({err})") from None
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise backbone_file_error(
                self.head_path, f"has weights of shapes {self.weight.shape} and {self.bias.shape}"
            )

        words_bytes = words_path.read_bytes()
        per_class: list[list[str]] = json.loads(words_bytes)
        if len(per_class) != self.weight.shape[0]:
            raise ValueError(
                f"{words_path} lists {len(per_class)} classes, the head has {self.weight.shape[0]}"
            )
        self.class_names = [words[0] for words in per_class]
        # Vocabulary in order of first appearance; a class contributes to each of its words once.
        self.words: list[str] = list(dict.fromkeys(w for words in per_class for w in words))
        # (n_words, 1000), 1 where a class lists a word: a word's score is its row times the class
        # probabilities. Most words name one class (their score is that class's row, copied); the
        # broader ones (175 of the shipped 1,205; "dog": 118 breeds) are a small dense product.
        # Pure numpy: scipy's sparse product is no faster here and costs 0.2 s to import.
        self._word_matrix = np.zeros((len(self.words), self.weight.shape[0]), dtype=np.float32)
        word_index = {word: j for j, word in enumerate(self.words)}
        for i, words in enumerate(per_class):
            self._word_matrix[[word_index[word] for word in words], i] = 1.0
        lists = self._word_matrix.sum(axis=1)
        self._one_class_words = np.flatnonzero(lists == 1)
        self._their_class = self._word_matrix[self._one_class_words].argmax(axis=1)
        self._broad_words = np.flatnonzero(lists > 1)
        self._broad_matrix = np.ascontiguousarray(self._word_matrix[self._broad_words])
        self.version = "imagenet-" + hashlib.sha256(head_bytes + words_bytes).hexdigest()[:12]

    def _read_head(self) -> bytes:
        """The head's bytes, checked against the card beside it when there is one."""
        data = read_model_file(self.head_path)
        card_path = self.head_path.parent / CARD_FILE
        try:
            expected = json.loads(card_path.read_text()).get("head", {}).get("sha256")
        except (OSError, ValueError, AttributeError):
            expected = None  # no card: the embedder reports that; the head still loads on its own
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise backbone_file_error(
                self.head_path, f"does not match the checksum in {CARD_FILE}: it is corrupt or was replaced"
            )
        return data

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, 1280) embeddings -> (N, 1000) ImageNet class probabilities."""
        return self._probabilities_by_class(embeddings).T

    def _probabilities_by_class(self, embeddings: np.ndarray) -> np.ndarray:
        """(1000, N): the softmax of the head's logits, a class a row, computed in place."""
        logits = self.weight @ np.asarray(embeddings, dtype=np.float32).T
        logits += self.bias[:, None]
        logits -= logits.max(axis=0, keepdims=True)  # stable: exp never overflows
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=0, keepdims=True)
        return logits

    def word_scores(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, n_words): each word's summed class probability, clipped to 1 against rounding."""
        # Laid out a class a row, whole rows are copied and summed (gathering columns of an
        # (N, 1000) array and summing them took twice the time of the head itself).
        by_class = self._probabilities_by_class(embeddings)
        summed = np.empty((len(self.words), by_class.shape[1]), dtype=np.float32)
        summed[self._one_class_words] = by_class[self._their_class]
        summed[self._broad_words] = self._broad_matrix @ by_class
        return np.minimum(summed, 1.0, out=summed).T

    def word_matrix(self) -> np.ndarray:
        """(1000, n_words) float32, 1 where a class lists a word: `word_scores` is the clipped
        product of the class probabilities with it (what an exported day-one model computes)."""
        return self._word_matrix.T.copy()

    def tags(self, embeddings: np.ndarray, threshold: float, top_k: int) -> list[Tags]:
        """For each embedding, up to `top_k` (word, confidence) pairs with confidence >= threshold, best first."""
        scores = self.word_scores(np.atleast_2d(embeddings))
        k = max(0, min(top_k, scores.shape[1]))
        if k == 0:
            return [[] for _ in range(len(scores))]
        if threshold > 0:
            return self._above(scores, threshold, k)
        # argpartition finds the k best words per row without sorting all of them.
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, best, axis=1)
        # Best first; ties by vocabulary order, which puts a class's own name before its broader words.
        order = np.lexsort((best, -best_scores), axis=1)
        best = np.take_along_axis(best, order, axis=1)
        best_scores = np.take_along_axis(best_scores, order, axis=1)
        return [
            [(self.words[j], float(s)) for j, s in zip(row, row_scores, strict=True) if s >= threshold]
            for row, row_scores in zip(best, best_scores, strict=True)
        ]

    def _above(self, scores: np.ndarray, threshold: float, k: int) -> list[Tags]:
        """The k best words of each row among those >= threshold (a few per row: the scores of a
        row sum to about three), in the order of `tags`, without a partition of every row."""
        rows, cols = np.nonzero(scores >= threshold)
        values = scores[rows, cols]
        order = np.lexsort((cols, -values, rows))  # by row, then best first, ties by vocabulary
        rows, cols, values = rows[order], cols[order], values[order].tolist()
        starts = np.searchsorted(rows, np.arange(len(scores) + 1))
        words = self.words
        named = [words[j] for j in cols.tolist()]
        return [
            list(zip(named[a : min(b, a + k)], values[a : min(b, a + k)], strict=True))
            for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True)
        ]
