"""What the models dashboard shows: the champion, the labels, the classes, the versions."""

from __future__ import annotations

from typing import Any

from eyes.context import Context
from eyes.ml.predictor import Champion
from eyes.services import label_clock, registry, training
from eyes.services.jobs_status import job_status
from eyes.services.labels import class_vocabulary, training_labels
from eyes.services.vocabulary import list_tags


def overview(ctx: Context, *, admin: bool) -> dict[str, Any]:
    """Everything on /models. Labels come from photos that may teach (never private ones without
    consent); tags waiting for approval, the tag list and worker names are for administrators
    (and the command line) only."""
    champion = ctx.tagger.champion()
    versions = registry.describe_versions(ctx, admin=admin)
    newest_run = versions[0]["version"] if versions else None
    counts = label_clock.memoised(
        ctx, "dashboard", lambda: _label_counts(ctx, champion), newest_run, champion.name
    )
    with ctx.sessions() as session:
        tags = list_tags(session) if admin else []
    for v in versions:
        v.pop("history", None)
    return {
        "champion": champion.name,
        "versions": versions,
        "n_labels": counts["n_labels"],
        "classes": counts["classes"],
        "waiting": counts["waiting"] if admin else [],
        "n_waiting": len(counts["waiting"]),
        "tags": tags,
        "since_last": counts["growth"].since_last,
        "since_last_deep": counts["growth"].since_last_deep,
        "jobs": job_status(ctx, admin=True) if admin else None,  # internals, for administrators
    }


def _label_counts(ctx: Context, champion: Champion) -> dict[str, Any]:
    """The dashboard's figures that come from counting every label (kept while the clock stands)."""
    with ctx.sessions() as session:
        labels = training_labels(session, ctx.settings)
        vocab = class_vocabulary(session, labels, ctx.settings, known=set(champion.vocabulary))
    return {
        "n_labels": labels.count,
        "classes": vocab.classes,
        "waiting": vocab.waiting,
        "growth": training.label_growth(ctx, labels),
    }
