"""The JSON API of people, under /api/v1/me: the signed-in owner's own faces, groups and people.

Every id here is one of the caller's own; anyone else's is 404, like an id that does not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response

from eyes.domain import MAX_ID
from eyes.services import people
from eyes.services import people_views as views
from eyes.services.views import PhotoList
from eyes.web.deps import ContextDep, UserDep, next_page
from eyes.web.routers import api_router
from eyes.web.schemas import (
    FaceAssign,
    GroupMerge,
    GroupSplit,
    NotAFace,
    PersonMerge,
    PersonName,
    PersonUpdate,
    SuggestionAnswer,
)

router = api_router("/api/v1/me", errors=(400, 401, 403, 404, 409, 422, 429), tags=["people"])

GroupId = Annotated[int, Path(ge=1, le=MAX_ID, description="A group's id, from the overview")]
PersonId = Annotated[int, Path(ge=1, le=MAX_ID, description="A person's id")]
FaceId = Annotated[int, Path(ge=1, le=MAX_ID, description="A face's id")]


@router.get("/people", response_model=list[views.PersonPublic], summary="The people you named")
def list_people(ctx: ContextDep, user: UserDep) -> list[views.PersonPublic]:
    return views.list_people(ctx, user)


@router.get(
    "/people/overview",
    response_model=views.PeopleOverview,
    summary="Your people, groups of unnamed faces, and suggestions (the People page)",
)
def overview(ctx: ContextDep, user: UserDep) -> views.PeopleOverview:
    return views.overview(ctx, user)


@router.post(
    "/people/grouping", response_model=people.GroupingResult, summary="Group your unnamed faces again"
)
def regroup(ctx: ContextDep, user: UserDep) -> people.GroupingResult:
    return people.regroup(ctx, user)


@router.post(
    "/people/groups/{group_id}/name",
    response_model=views.PersonPublic,
    summary="Name a group: its faces are that person (someone you named already, if the name is theirs)",
)
def name_group(group_id: GroupId, body: PersonName, ctx: ContextDep, user: UserDep) -> views.PersonPublic:
    return people.name_group(ctx, user, group_id, body.name)


@router.post(
    "/people/groups/{group_id}/merge",
    response_model=people.MergeResult,
    response_model_exclude_none=True,
    summary="Merge a group into another group, or into someone you named",
)
def merge_group(group_id: GroupId, body: GroupMerge, ctx: ContextDep, user: UserDep) -> people.MergeResult:
    if body.into_person is not None:
        return people.MergeResult(
            person=people.merge_group_into_person(ctx, user, group_id, body.into_person)
        )
    assert body.into_group is not None  # the schema says one of the two
    return people.MergeResult(group=people.merge_groups(ctx, user, group_id, body.into_group))


@router.post(
    "/people/groups/{group_id}/split",
    response_model=people.SplitResult,
    summary="Split the chosen faces off a group (until the next grouping, unless named)",
)
def split_group(group_id: GroupId, body: GroupSplit, ctx: ContextDep, user: UserDep) -> people.SplitResult:
    return people.split_group(ctx, user, group_id, body.faces)


@router.get("/people/{person_id}", response_model=views.PersonPublic, summary="Someone you named")
def get_person(person_id: PersonId, ctx: ContextDep, user: UserDep) -> views.PersonPublic:
    views.check_on(ctx)
    return views.person_view(ctx, user, person_id)


@router.patch(
    "/people/{person_id}",
    response_model=views.PersonPublic,
    summary="Rename someone, or choose who sees their tag",
)
def update_person(
    person_id: PersonId, body: PersonUpdate, ctx: ContextDep, user: UserDep
) -> views.PersonPublic:
    return people.update_person(
        ctx, user, person_id, name=body.name, audience=body.audience, viewers=body.viewers or []
    )


@router.delete("/people/{person_id}", status_code=204, summary="Forget a name: its faces are unnamed again")
def delete_person(person_id: PersonId, ctx: ContextDep, user: UserDep) -> Response:
    people.delete_person(ctx, user, person_id)
    return Response(status_code=204)


@router.post(
    "/people/{person_id}/merge",
    response_model=views.PersonPublic,
    summary="Two people are one: this one's faces go to `into_person`, and this one is gone",
)
def merge_people(
    person_id: PersonId, body: PersonMerge, ctx: ContextDep, user: UserDep
) -> views.PersonPublic:
    return people.merge_people(ctx, user, person_id, body.into_person)


@router.get("/people/{person_id}/faces", response_model=list[views.FaceView], summary="Their faces")
def person_faces(person_id: PersonId, ctx: ContextDep, user: UserDep) -> list[views.FaceView]:
    return views.person_faces(ctx, user, person_id)


@router.get(
    "/people/{person_id}/photos", response_model=PhotoList, summary="Your photos of them, newest first"
)
def person_photos(
    request: Request,
    person_id: PersonId,
    ctx: ContextDep,
    user: UserDep,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Cursor from `next`")] = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
) -> PhotoList:
    page = views.person_photos(ctx, user, person_id, before=before, limit=limit)
    return PhotoList(items=page.items, next=next_page(request, before=page.next_before))


@router.post(
    "/faces/{face_id}/person",
    response_model=views.FaceView,
    summary="Say who a face is: a name, someone you named, or nobody (not who it was)",
)
def assign_face(face_id: FaceId, body: FaceAssign, ctx: ContextDep, user: UserDep) -> views.FaceView:
    if body.name is not None:
        people.name_face(ctx, user, face_id, body.name)
        return views.face_view(ctx, user, face_id)
    return people.move_face(ctx, user, face_id, body.person)


@router.post("/faces/{face_id}/not-a-face", response_model=views.FaceView, summary="This is not a face")
def not_a_face(face_id: FaceId, body: NotAFace, ctx: ContextDep, user: UserDep) -> views.FaceView:
    return people.mark_not_a_face(ctx, user, face_id, body.not_a_face)


@router.post(
    "/faces/{face_id}/suggestion",
    response_model=views.FaceView,
    summary="Answer a suggestion: yes, this is them; or no, never suggest them for this face",
)
def answer_suggestion(
    face_id: FaceId, body: SuggestionAnswer, ctx: ContextDep, user: UserDep
) -> views.FaceView:
    if body.accept:
        return people.confirm_suggestion(ctx, user, face_id)
    return people.reject_suggestion(ctx, user, face_id)
