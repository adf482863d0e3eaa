"""The promotion gate: a candidate goes into service only if it is at least as good as the champion.

Both are judged on the same photos and the tags both know: labelled photos neither trained on
(the candidate's held-out scores, the champion's own on photos labelled since it was trained).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eyes.context import Context
from eyes.ml.head import Head
from eyes.ml.metrics import top1_hits
from eyes.ml.predictor import Champion
from eyes.services.tagging import activations_for
from eyes.services.training_set import Dataset, Evidence


def compare_with_champion(
    ctx: Context, champion: Champion, data: Dataset, evidence: Evidence, head: Head
) -> dict[str, Any]:
    """The promotion gate: top-1 accuracy of candidate and champion among the tags both know, on
    held-out photos the champion did not train on either (labelled since it was trained). Where
    there are none, on every held-out photo, which favours the champion (it saw them). The
    candidate wins unless the champion is better by more than the margin and beyond the noise."""
    shared = sorted(set(head.vocabulary) & set(champion.vocabulary))
    margin = ctx.settings.promotion_margin
    base = {"champion": champion.name, "shared_tags": shared, "margin": margin}
    if not evidence.covered.any():
        return {**base, "promote": False, "reason": "no held-out photos to judge the candidate on"}
    if not shared:
        return {
            **base,
            "promote": True,
            "reason": f"the champion knows none of these tags; the candidate adds {len(head.vocabulary)}",
        }
    cols = [data.vocabulary.index(t) for t in shared]
    leaf_cols = [c for c in cols if c in data.leaves] or cols
    truth = data.y[:, leaf_cols]
    judged = evidence.covered & (truth.sum(axis=1) > 0)
    unseen = judged & ~np.isin(np.array(data.shas), list(champion.trained_on))
    fair = bool(unseen.any())
    rows = unseen if fair else judged
    if not rows.any():
        return {**base, "promote": True, "reason": "no held-out photo carries a shared tag"}
    champion_scores = _champion_scores(ctx, champion, data, rows, [data.vocabulary[c] for c in leaf_cols])
    candidate_right = top1_hits(evidence.scores[rows][:, leaf_cols], truth[rows])
    champion_right = top1_hits(champion_scores, truth[rows])
    candidate_acc, champion_acc = float(candidate_right.mean()), float(champion_right.mean())
    # Photos where exactly one of the two is right decide; a champion better on a handful of them
    # is within the noise, and the candidate has the newer labels: it is kept out only when the
    # champion is clearly better (one-sided sign test, 5%) and by more than the margin.
    only_champion = int((champion_right & ~candidate_right).sum())
    only_candidate = int((candidate_right & ~champion_right).sum())
    discordant = only_champion + only_candidate
    z = (only_champion - only_candidate) / np.sqrt(discordant) if discordant else 0.0
    # (A negative margin demands a clear improvement: then the noise excuses nothing.)
    promote = candidate_acc >= champion_acc - margin or (margin >= 0 and z < 1.645)
    verdict = "promoted" if promote else "rejected"
    photos = "photos neither trained on" if fair else "held-out photos (the champion trained on them)"
    return {
        **base,
        "n": int(rows.sum()),
        "unseen_by_champion": fair,
        "candidate_accuracy": candidate_acc,
        "champion_accuracy": champion_acc,
        "only_candidate_right": only_candidate,
        "only_champion_right": only_champion,
        "promote": bool(promote),
        "reason": f"{verdict}: top-1 on {len(leaf_cols)} shared tags, {int(rows.sum())} {photos}: "
        f"candidate {candidate_acc:.1%} vs champion {champion_acc:.1%} (margin {margin:.1%}; right where "
        f"the other is wrong: candidate {only_candidate}, champion {only_champion})",
    }


def _champion_scores(
    ctx: Context, champion: Champion, data: Dataset, rows: np.ndarray, tags: list[str]
) -> np.ndarray:
    activations = None
    if champion.needs_activations:
        stored = activations_for(ctx, [data.shas[i] for i in np.flatnonzero(rows)])
        activations = np.stack([stored[data.shas[i]] for i in np.flatnonzero(rows)])
    probs = ctx.tagger.scores(champion, data.x[rows], activations)
    return probs[:, [champion.vocabulary.index(t) for t in tags]]
