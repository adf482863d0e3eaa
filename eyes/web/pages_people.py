"""People pages: the owner's groups of faces and the people they named, the forms that name,
merge, split and correct them (without JavaScript), and the small pictures of faces.

Everything here is the signed-in owner's own: another account's id is 'not found'.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from eyes.domain import MAX_ID, PersonAudience
from eyes.errors import BadRequest
from eyes.services import people
from eyes.services import people_views as views
from eyes.web.deps import ContextDep, UserDep, next_page
from eyes.web.pages import Cursor, redirect, render
from eyes.web.routers import page_router

router = page_router()
Name = Annotated[str, Form(max_length=1000)]


def _back(back: str, default: str = "/people") -> str:
    """Where a form returns: one of the People pages, never anywhere else."""
    return back if back == "/people" or (back.startswith("/people/") and back[8:].isdigit()) else default


@router.get("/people", response_class=HTMLResponse)
def people_page(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    return render(request, "people.html", overview=views.overview(ctx, user), faces_on=user.faces_enabled)


@router.get("/people/faces/{face_id}.jpg")
def face_picture(face_id: int, request: Request, ctx: ContextDep, user: UserDep) -> Response:
    """A small picture of one of the owner's faces: theirs alone, cached by their browser only."""
    picture = views.face_picture(ctx, user, face_id, request.headers.get("if-none-match"))
    headers = {
        "ETag": picture.etag,
        # A face's box never changes: the picture may be kept, but only by this browser.
        "Cache-Control": "private, max-age=86400",
        "X-Content-Type-Options": "nosniff",
    }
    if picture.data is None:
        return Response(status_code=304, headers=headers)
    return Response(picture.data, media_type="image/jpeg", headers=headers)


@router.get("/people/{person_id}", response_class=HTMLResponse)
def person_page(
    person_id: int, request: Request, ctx: ContextDep, user: UserDep, before: Cursor = None
) -> Response:
    views.check_on(ctx)
    person = views.person_view(ctx, user, person_id)
    page = views.person_photos(ctx, user, person_id, before=before)
    return render(
        request,
        "person.html",
        person=person,
        faces=views.person_faces(ctx, user, person_id),
        others=[p for p in views.list_people(ctx, user) if p.id != person.id],
        audiences=[a.value for a in PersonAudience],
        photos=page.items,
        next_url=next_page(request, before=page.next_before),
    )


@router.post("/people/group")
def regroup(ctx: ContextDep, user: UserDep) -> Response:
    people.regroup(ctx, user)
    return redirect("/people")


@router.post("/people/groups/{group_id}/name")
def name_group(group_id: int, ctx: ContextDep, user: UserDep, name: Name) -> Response:
    people.name_group(ctx, user, group_id, name)
    return redirect("/people")


@router.post("/people/groups/{group_id}/merge")
def merge_group(
    group_id: int, ctx: ContextDep, user: UserDep, into: Annotated[str, Form(max_length=20)] = ""
) -> Response:
    """`into` is `g<id>` (another group) or `p<id>` (someone named)."""
    kind, number = into[:1], into[1:]
    if kind not in ("g", "p") or not number.isdigit() or len(number) > 10:
        raise BadRequest("choose the group or person to merge with")
    if kind == "p":
        people.merge_group_into_person(ctx, user, group_id, int(number))
    else:
        people.merge_groups(ctx, user, group_id, int(number))
    return redirect("/people")


@router.post("/people/groups/{group_id}/split")
def split_group(
    group_id: int,
    ctx: ContextDep,
    user: UserDep,
    faces: Annotated[list[int], Form()] = [],  # noqa: B006
) -> Response:
    if not faces:
        raise BadRequest("tick the faces to split off first")
    people.split_group(ctx, user, group_id, faces)
    return redirect("/people")


@router.post("/people/faces/{face_id}/name")
def name_face(
    face_id: int, ctx: ContextDep, user: UserDep, name: Name, back: Annotated[str, Form()] = ""
) -> Response:
    people.name_face(ctx, user, face_id, name)
    return redirect(_back(back))


@router.post("/people/faces/{face_id}/remove")
def unname_face(face_id: int, ctx: ContextDep, user: UserDep, back: Annotated[str, Form()] = "") -> Response:
    """Not this person (or not of this group)."""
    people.unname_face(ctx, user, face_id)
    return redirect(_back(back))


@router.post("/people/faces/{face_id}/not-a-face")
def not_a_face(face_id: int, ctx: ContextDep, user: UserDep, back: Annotated[str, Form()] = "") -> Response:
    people.mark_not_a_face(ctx, user, face_id)
    return redirect(_back(back))


@router.post("/people/faces/{face_id}/suggestion")
def answer_suggestion(
    face_id: int, ctx: ContextDep, user: UserDep, answer: Annotated[str, Form(max_length=10)] = ""
) -> Response:
    if answer == "yes":
        people.confirm_suggestion(ctx, user, face_id)
    elif answer == "no":
        people.reject_suggestion(ctx, user, face_id)
    else:
        raise BadRequest("answer yes or no")
    return redirect("/people")


@router.post("/people/{person_id}/rename")
def rename(person_id: int, ctx: ContextDep, user: UserDep, name: Name) -> Response:
    people.update_person(ctx, user, person_id, name=name)
    return redirect(f"/people/{person_id}")


@router.post("/people/{person_id}/audience")
def audience(
    person_id: int,
    ctx: ContextDep,
    user: UserDep,
    audience: Annotated[str, Form(max_length=20)] = "",
    viewers: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    try:
        chosen = PersonAudience(audience)
    except ValueError:
        raise BadRequest(
            "who sees the tag is one of: " + ", ".join(a.value for a in PersonAudience)
        ) from None
    names = [v for v in viewers.replace(",", " ").split() if v] if chosen == PersonAudience.CHOSEN else []
    people.update_person(ctx, user, person_id, audience=chosen, viewers=names)
    return redirect(f"/people/{person_id}")


@router.post("/people/{person_id}/merge")
def merge_person(
    person_id: int, ctx: ContextDep, user: UserDep, into: Annotated[int, Form(ge=1, le=MAX_ID)]
) -> Response:
    people.merge_people(ctx, user, person_id, into)
    return redirect(f"/people/{into}")


@router.post("/people/{person_id}/delete")
def delete(person_id: int, ctx: ContextDep, user: UserDep) -> Response:
    people.delete_person(ctx, user, person_id)
    return redirect("/people")
