"""Tags: the rule of one tag name, a link's ``tags`` field, and the tag resources."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..services.tags import MAX_TAGS_PER_LINK, TAG_PATTERN, normal_form, tag_problem
from .fields import Username, absolute_uri
from .pages import PageQuery


class TagName(fields.String):
    """One tag: the one place its rule is checked (services/tags.tag_problem)."""

    def __init__(self, **kwargs) -> None:
        metadata = {
            "pattern": TAG_PATTERN,
            "minLength": 1,
            "maxLength": 64,
            "description": "Letters and digits (of any script), spaces, '-', '_', '.' and "
            "':'; compared case-insensitively.",
            **kwargs.pop("metadata", {}),
        }
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        problem = tag_problem(value)
        if problem is not None:
            raise ValidationError(problem)
        return normal_form(value)


def tags_field(**kwargs) -> fields.List:
    """``tags`` of a link: up to 50, in the order given (each tag once)."""
    return fields.List(
        TagName(),
        allow_none=True,
        validate=validate.Length(max=MAX_TAGS_PER_LINK),
        metadata={
            "description": f"Up to {MAX_TAGS_PER_LINK} tags, shown in the order given; a tag "
            "already used by the owner keeps its first spelling (case-insensitively equal "
            "names are one tag). PUT and PATCH replace the whole list; null is none."
        },
        **kwargs,
    )


def _owner_of(tag) -> dict[str, str]:
    """An admin's view of another user's tag names its owner in its URIs."""
    return {"owner": tag.owner_username} if tag.other_owner else {}


def _uri_of(tag) -> str:
    return absolute_uri("tag", name=tag.name, **_owner_of(tag))


def _links_of(tag) -> str:
    """The collection of the owner's links carrying the tag."""
    return absolute_uri("links", tag=tag.name, **_owner_of(tag))


class TagSchema(Schema):
    uri = fields.Function(
        _uri_of,
        dump_only=True,
        metadata={"type": "string", "format": "uri"},
    )
    name = TagName(required=True)
    links = fields.Function(
        _links_of,
        dump_only=True,
        metadata={
            "type": "string",
            "format": "uri",
            "description": "GET /api/v1.0/links filtered by this tag (and its owner).",
        },
    )
    link_count = fields.Integer(dump_only=True)


class TagRenameSchema(Schema):
    """PATCH /tags/<name>: the new name (onto an existing tag: the two merge)."""

    class Meta:
        unknown = RAISE

    name = TagName(required=True)


class TagListQuery(PageQuery):
    class Meta:
        unknown = RAISE

    owner = Username(load_default=None, metadata={"description": "Admins: this user's tags."})


class TagOwnerQuery(Schema):
    class Meta:
        unknown = RAISE

    owner = Username(load_default=None, metadata={"description": "Admins: this user's tag."})
