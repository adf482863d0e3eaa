"""What the models dashboard shows: the champion, the labels, the classes, the versions."""

from __future__ import annotations

from typing import Any

from eyes.context import Context
from eyes.services import registry, training
from eyes.services.jobs_status import job_status
from eyes.services.labels import class_vocabulary, training_labels
from eyes.services.vocabulary import list_tags


def overview(ctx: Context, *, admin: bool) -> dict[str, Any]:
    """Everything on /models. Labels come from photos that may teach (never private ones without
    consent); tags waiting for approval, the tag list and worker names are for administrators
    (and the command line) only."""
    champion = ctx.tagger.champion()
    versions = registry.describe_versions(ctx, admin=admin)
    with ctx.sessions() as session:
        labels = training_labels(session, ctx.settings)
        vocab = class_vocabulary(session, labels, ctx.settings, known=set(champion.vocabulary))
        tags = list_tags(session) if admin else []
    growth = training.label_growth(ctx, labels)
    for v in versions:
        v.pop("history", None)
    return {
        "champion": champion.name,
        "versions": versions,
        "n_labels": labels.count,
        "classes": vocab.classes,
        "waiting": vocab.waiting if admin else [],
        "n_waiting": len(vocab.waiting),
        "tags": tags,
        "since_last": growth.since_last,
        "since_last_deep": growth.since_last_deep,
        "jobs": job_status(ctx, admin=True) if admin else None,  # internals, for administrators
    }
