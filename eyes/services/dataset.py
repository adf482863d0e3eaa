"""The community's data set: the photos that may leave, their training-grade labels, who decided
them and how, and the card that describes the whole.

Which photos may leave is one rule, `exportable_photos()`: public (an unlisted photo is shared
with whoever has its link, not published; a private one is its owner's alone) and under an open
licence (never all rights reserved). The labels are training grade by the same rules as
training's (services/labels.py), computed over those photos only, so nothing a private or
all-rights-reserved copy of the same image says leaks into the export. An image uploaded by
several people is one example, as in training: it is credited to its first uploader whose
photo may leave, and its labels combine every copy that may leave.

Writing the files (to a folder, or a zip streamed to a browser) is services/dataset_files.py.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from sqlalchemy import ColumnElement, and_, select

from eyes.context import Context
from eyes.db.models import Image, Photo, User
from eyes.domain import License, Visibility
from eyes.errors import BadRequest, NotFound
from eyes.services.labels import Labels, training_labels
from eyes.services.photos import not_hidden
from eyes.services.tags import parse_tag_list
from eyes.services.vocabulary import Hierarchy, hierarchy

MAX_EXPORT_TAGS = 200
MAX_MIN_AGREEMENT = 1000
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif"}
MANIFEST = "manifest.jsonl"
CARD = "README.md"


class NothingToExport(NotFound):
    """The export asked for is empty: no photo that may leave has a label it wants."""

    code = "nothing_to_export"


class DatasetFormat(enum.StrEnum):
    IMAGEFOLDER = "imagefolder"  # CLASS/IMAGE: one class per image, what most training code reads
    JSONL = "jsonl"  # images/IMAGE, every label (yes and no) in the manifest: multi-label


def exportable_photos() -> ColumnElement[bool]:
    """The one rule for which photos may leave in a data set export: public, under an open
    licence, and not hidden by moderation (nor of a suspended account). Every export reads this."""
    open_licenses = [license for license in License if license.exportable]
    return and_(Photo.visibility == Visibility.PUBLIC, Photo.license.in_(open_licenses), not_hidden())


@dataclass
class Item:
    """One image of the data set: the file it becomes, the photo it is credited to, its labels."""

    sha256: str
    path: str  # within the data set, '/'-separated
    public_id: str
    author: str
    title: str
    license: License
    yes: list[str]
    no: list[str]
    how: list[dict[str, object]]  # per label: who decided it and how
    klass: str | None = None  # imagefolder's one class

    def manifest_line(self, reencoded: str | None) -> str:
        """The manifest's line for this image; `reencoded` is the written file's own hash when the
        original had to be re-encoded to drop its location."""
        line: dict[str, object] = {"file": self.path}
        if self.klass is not None:
            line["class"] = self.klass
        line |= {
            "sha256": self.sha256,
            "tags": self.yes,
            "not_tags": self.no,
            "labels": self.how,
            "license": self.license.value,
            "license_url": self.license.url,
            "author": self.author,
            "title": self.title,
            "attribution": attribution(self.title, self.author, self.license),
            "photo": f"/photos/{self.public_id}",
        }
        if reencoded is not None:
            line["file_sha256"] = reencoded  # the file differs from the original: location removed
        return json.dumps(line, ensure_ascii=False)


def attribution(title: str, author: str, license: License) -> str:
    """A credit line in the form Creative Commons suggests: title, author, source, licence."""
    name = f'"{title}" by {author}' if title else f"Photo by {author}"
    return f"{name} on Eyes, {license.display_name}"


@dataclass
class DatasetPlan:
    """What an export writes, decided before the first byte is: the images in order, with their
    labels, and what the card says of them."""

    format: DatasetFormat
    tags: list[str]  # the tags asked for; empty: every tag with a training-grade label
    min_agreement: int
    items: list[Item]
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> images left out
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def name(self) -> str:
        return f"eyes-dataset-{self.created_at:%Y%m%d-%H%M%S}"

    def class_counts(self) -> dict[str, int]:
        """Images per class: with a yes label (jsonl), or in the class's folder (imagefolder)."""
        if self.format == DatasetFormat.IMAGEFOLDER:
            counts = Counter(item.klass for item in self.items if item.klass)
        else:
            counts = Counter(name for item in self.items for name in item.yes)
        return dict(sorted(counts.items()))

    def license_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(item.license.value for item in self.items).items()))


def parse_tags(raw: Iterable[str], max_length: int) -> list[str]:
    """Tags as typed (each may list several, comma-separated): normalised, each once, bounded."""
    names: list[str] = []
    for part in raw:
        for name in parse_tag_list(part, max_length):
            if name not in names:
                names.append(name)
            if len(names) > MAX_EXPORT_TAGS:
                raise BadRequest(f"export at most {MAX_EXPORT_TAGS} tags at once")
    return names


def plan_dataset(
    ctx: Context,
    *,
    tags: Iterable[str] = (),
    min_agreement: int | None = None,
    format: DatasetFormat | str = DatasetFormat.IMAGEFOLDER,
) -> DatasetPlan:
    """Decide what an export writes; a clear 400 for a bad request or a data set with nothing in it."""
    settings = ctx.settings
    try:
        fmt = DatasetFormat(format)
    except ValueError:
        raise BadRequest(f"format is one of: {', '.join(DatasetFormat)}") from None
    wanted = parse_tags(tags, settings.max_tag_length)
    need = settings.min_votes_to_agree if min_agreement is None else min_agreement
    if not settings.min_votes_to_agree <= need <= MAX_MIN_AGREEMENT:
        raise BadRequest(
            f"min-agreement is from {settings.min_votes_to_agree} (EYES_MIN_VOTES_TO_AGREE: below it a "
            f"vote is no training-grade label) to {MAX_MIN_AGREEMENT}; this asks for {need}"
        )
    stricter = settings.model_copy(update={"min_votes_to_agree": need})
    with ctx.sessions() as session:
        labels = training_labels(session, stricter, photos=exportable_photos(), explain=True)
        tree = hierarchy(session)
        photo_ids = set().union(*labels.photos.values()) if labels.photos else set()
        rows = session.execute(
            select(
                Photo.id,
                Photo.sha256,
                Photo.public_id,
                User.username,
                Photo.title,
                Photo.license,
                Image.format,
            )
            .join(User, User.id == Photo.owner_id)
            .join(Image, Image.sha256 == Photo.sha256)
            .where(exportable_photos())
            .order_by(Photo.id)
        ).all()
    owners = {row.id: row.username for row in rows if row.id in photo_ids}
    credited: dict[str, tuple[str, str, str, License, str]] = {}
    for row in rows:  # by id: the first uploader of each image whose photo may leave
        if row.id in photo_ids and row.sha256 not in credited:
            credited[row.sha256] = (row.public_id, row.username, row.title, row.license, row.format)

    plan = DatasetPlan(fmt, wanted, need, [])
    skipped: Counter[str] = Counter()
    for sha in sorted(credited):
        yes, no = _labels_of(labels, sha, set(wanted))
        if not yes and not no:
            continue  # none of the tags asked for
        public_id, author, title, license, image_format = credited[sha]
        ext = EXTENSIONS[image_format]
        item = Item(sha, f"images/{sha}.{ext}", public_id, author, title, license, yes, no, [])
        if fmt == DatasetFormat.IMAGEFOLDER:
            classes = _most_specific(set(yes), tree)
            if len(classes) != 1:
                skipped["several classes" if classes else "no class (only 'no' labels)"] += 1
                continue
            item.klass = classes[0]
            item.path = f"{folder_name(item.klass)}/{sha}.{ext}"
        item.how = [_how(labels, sha, name, name in yes, tree, owners) for name in sorted(yes + no)]
        plan.items.append(item)
    plan.skipped = dict(skipped)
    if not plan.items:
        asked = f" for {', '.join(wanted)}" if wanted else ""
        raise NothingToExport(
            f"nothing to export{asked}: no public photo under an open licence (CC0, CC BY, CC BY-SA) "
            f"has a training-grade label{' that fits one folder' if skipped else ''}"
        )
    return plan


def _labels_of(labels: Labels, sha: str, wanted: set[str]) -> tuple[list[str], list[str]]:
    yes = labels.positives.get(sha, set())
    no = labels.negatives.get(sha, set())
    if wanted:
        yes, no = yes & wanted, no & wanted
    return sorted(yes), sorted(no)


def _most_specific(names: set[str], tree: Hierarchy) -> list[str]:
    """The tags no other of `names` lies under: `granny-smith`, not also its parent `apple`."""
    implied = set().union(*(tree.ancestors(n) for n in names)) if names else set()
    return sorted(names - implied)


def _how(
    labels: Labels, sha: str, name: str, agrees: bool, tree: Hierarchy, owners: dict[int, str]
) -> dict[str, object]:
    """Who decided one label and how: the owner (by name), trusted votes (with their counts,
    never the voters), or the hierarchy (a yes for a tag under it; a no for a tag above it)."""
    decided: list[dict[str, object]] = []
    for d in labels.decisions.get((sha, name), []):
        if d.agrees != agrees:
            continue  # a copy said otherwise and lost (the owner's yes wins on the same image)
        if d.by == "owner":
            decided.append({"by": "owner", "user": owners.get(d.photo_id, "")})
        else:
            decided.append({"by": "votes", "yes": d.yes, "no": d.no})
    if not decided:
        if agrees:
            source = sorted(n for n in labels.positives.get(sha, set()) if name in tree.ancestors(n))
        else:
            source = sorted(n for n in labels.negatives.get(sha, set()) if n in tree.ancestors(name))
        decided.append({"by": "hierarchy", "from": source})
    return {"tag": name, "label": "yes" if agrees else "no", "decided_by": decided}


# Characters that some file system refuses in a name (Windows is the strictest), written as %XX;
# '%' itself can never be in a tag (services/tags.py), so a folder name reads back unambiguously.
_UNSAFE = set('<>:"|?*/\\%')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
MAX_FOLDER_BYTES = 200


def folder_name(tag: str) -> str:
    """The folder an imagefolder class is written to: the tag itself whenever every file system
    takes it, else with the offending characters as %XX (a leading dot, '..', a trailing dot or
    space, a reserved Windows name, control characters). Never a path: no separator survives."""
    chars = [f"%{ord(c):02X}" if c in _UNSAFE or ord(c) < 32 or ord(c) == 127 else c for c in tag]
    if chars and chars[0] == ".":
        chars[0] = "%2E"  # no hidden folder, no '.' or '..'
    if chars and chars[-1] in (".", " "):
        chars[-1] = f"%{ord(chars[-1]):02X}"
    name = "".join(chars)
    if name.split(".")[0].lower() in _RESERVED:
        name = f"%{ord(name[0]):02X}{name[1:]}"
    if len(name.encode()) > MAX_FOLDER_BYTES:  # a long name in a wide script: cut, kept distinct
        digest = hashlib.sha256(tag.encode()).hexdigest()[:12]
        name = name.encode()[: MAX_FOLDER_BYTES - 13].decode(errors="ignore") + "~" + digest
    return name or "%00"


def eyes_version() -> str:
    try:
        return version("eyes")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def card(plan: DatasetPlan, written: int, missing: int) -> str:
    """The data set's README: what is in it, where it came from, under which licences."""
    classes = plan.class_counts()
    licenses = plan.license_counts()
    layout = (
        "one folder per class, named by its tag (characters a file system refuses written as %XX; "
        "`class` in the manifest is the tag itself)"
        if plan.format == DatasetFormat.IMAGEFOLDER
        else "every image under `images/`, its labels (yes and no) in the manifest: multi-label"
    )
    lines = [
        f"# {plan.name}",
        "",
        f"Photos and labels from an Eyes community, exported {plan.created_at:%Y-%m-%d %H:%M} UTC by "
        f"Eyes {eyes_version()}.",
        "",
        f"- **Images:** {written}" + (f" ({missing} could not be read from the store)" if missing else ""),
        f"- **Format:** `{plan.format.value}`: {layout}.",
        f"- **Tags asked for:** {', '.join(plan.tags) if plan.tags else 'all with a training-grade label'}",
        "- **Which photos:** public photos whose owner chose an open licence (CC0, CC BY, CC BY-SA). "
        "Private, unlisted and all-rights-reserved photos are never exported.",
        "- **Which labels:** training grade only: set, confirmed or rejected by the photo's owner, or "
        f"agreed by at least {plan.min_agreement} trusted users with fewer disagreeing; a yes for a tag "
        "is a yes for the tags above it, a no a no for the tags below it.",
        "- **Locations:** removed. An original whose file carried one was re-encoded without any "
        "metadata (its manifest line gives the new file's `file_sha256`).",
        "",
        "## Classes",
        "",
        "| tag | images |",
        "| --- | ---: |",
        *(f"| {_cell(name)} | {n} |" for name, n in classes.items()),
        "",
        "## Licences",
        "",
        "| licence | images |",
        "| --- | ---: |",
        *(f"| {License(name).display_name} | {n} |" for name, n in licenses.items()),
        "",
        "CC BY and CC BY-SA require credit to the author: each image's `author`, `title` and a ready "
        "`attribution` line are in the manifest. CC BY-SA requires that what you share from them is "
        "under the same licence.",
        "",
        f"## `{MANIFEST}`",
        "",
        "One JSON object per image: `file`, `sha256` (the original's content hash), `tags` (yes), "
        "`not_tags` (no), `labels` (each with `decided_by`: the `owner` by name, `votes` with the "
        "counts for and against, or the `hierarchy` and the tags it came `from`), `license`, "
        "`license_url`, `author`, `title`, `attribution` and `photo` (its page on the Eyes it came from).",
    ]
    if plan.skipped:
        lines += ["", "## Left out", ""]
        lines += [f"- {n} image(s): {reason}" for reason, n in sorted(plan.skipped.items())]
        if plan.format == DatasetFormat.IMAGEFOLDER:
            lines.append("- (`--format jsonl` keeps every labelled image, with all its labels.)")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
