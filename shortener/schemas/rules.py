"""Redirect rules and A/B variants as clients send and see them (services/rules.py).

The link's ``rules`` and ``variants`` fields (schemas/links.py) and the
``/api/v1.0/links/<slug>/rules`` sub-resource use these schemas; a rule's target is the
link's own target field (``TargetUrl``), so both follow one rule.
"""

from __future__ import annotations

import ipaddress
import re

from flask import current_app
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ..services.rules import (
    CONDITION_TYPES,
    DEVICES,
    FAMILY_MAX_LENGTH,
    MAX_CONDITIONS,
    MAX_RULES,
    MAX_VARIANTS,
    MAX_WEIGHT,
    MIN_VARIANTS,
    MIN_WEIGHT,
    QUERY_NAME_MAX_LENGTH,
    QUERY_VALUE_MAX_LENGTH,
    TOTAL_WEIGHT,
    load_json,
)
from .fields import Instant, uri_to
from .targets import TargetUrl

_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,3}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_TARGET_METADATA = {
    "format": "uri",
    "description": "Where the visitor goes: the same rules as the link's target.",
}


def geoip_configured() -> bool:
    return current_app.extensions["shortener.settings"].geoip_db is not None


class ConditionSchema(Schema):
    """One condition; ``value`` is checked against its ``type`` (a per-field message)."""

    class Meta:
        unknown = RAISE

    type = fields.String(required=True, validate=validate.OneOf(CONDITION_TYPES))
    name = fields.String(
        validate=validate.Length(1, QUERY_NAME_MAX_LENGTH),
        metadata={"description": "type query only: the query parameter's name."},
    )
    value = fields.Raw(
        allow_none=True,
        metadata={
            "description": "device: mobile, tablet, desktop, ios or android; os, browser: a "
            "family as ua-parser names it (case-insensitive); language: de or de-AT "
            "(Accept-Language, q=0 not acceptable); query: the value, or null for present; "
            "country: ISO 3166-1 alpha-2 (needs SHORTENER_GEOIP_DB); ip: an address or CIDR "
            "network; before, after: an RFC 3339 timestamp.",
        },
    )

    @validates_schema
    def _value_fits_type(self, data, **kwargs) -> None:
        kind = data.get("type")
        if kind is None:
            return
        if kind == "query":
            if "name" not in data:
                raise ValidationError("Missing data for required field.", field_name="name")
        elif "name" in data:
            raise ValidationError("Only query conditions have a name.", field_name="name")
        if "value" not in data:
            raise ValidationError("Missing data for required field.", field_name="value")
        data["value"] = _checked_value(kind, data["value"])


def _checked_value(kind: str, value):
    """The value as stored for a condition of ``kind``; ValidationError on ``value``."""

    def refuse(message: str):
        return ValidationError(message, field_name="value")

    if kind == "query":
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > QUERY_VALUE_MAX_LENGTH:
            raise refuse(f"Must be a string of at most {QUERY_VALUE_MAX_LENGTH} characters, "
                         "or null for 'present'.")  # fmt: skip
        return value
    if not isinstance(value, str):
        raise refuse("Must be a string.")
    if kind == "device":
        if value.lower() not in DEVICES:
            raise refuse("Must be one of: " + ", ".join(DEVICES) + ".")
        return value.lower()
    if kind in ("os", "browser"):
        if not value.strip() or len(value) > FAMILY_MAX_LENGTH:
            raise refuse(f"Must be a family name of 1 to {FAMILY_MAX_LENGTH} characters.")
        return value.strip()
    if kind == "language":
        if not _LANGUAGE.fullmatch(value):
            raise refuse("Must be a language tag such as de or de-AT.")
        return value
    if kind == "country":
        if not _COUNTRY.fullmatch(value):
            raise refuse("Must be an ISO 3166-1 alpha-2 country code such as DE.")
        if not geoip_configured():
            raise refuse("Country conditions need a GeoIP database, and this server has "
                         "none: the operator sets SHORTENER_GEOIP_DB.")  # fmt: skip
        return value.upper()
    if kind == "ip":
        try:
            return str(ipaddress.ip_network(value, strict=True))
        except ValueError:
            raise refuse("Must be an IP address or a CIDR network (no host bits set), "
                         "such as 203.0.113.0/24.") from None  # fmt: skip
    if kind in ("before", "after"):
        try:
            moment = Instant().deserialize(value)
        except ValidationError as error:
            raise refuse(error.messages[0]) from None
        return Instant()._serialize(moment, None, None)
    raise refuse("Unknown condition type.")  # not reached: type is checked first


class RuleSchema(Schema):
    class Meta:
        unknown = RAISE

    conditions = fields.List(
        fields.Nested(ConditionSchema),
        required=True,
        validate=validate.Length(1, MAX_CONDITIONS),
        metadata={"description": "All must hold for the rule to decide."},
    )
    target = TargetUrl(required=True, metadata=_TARGET_METADATA)


class VariantSchema(Schema):
    class Meta:
        unknown = RAISE

    target = TargetUrl(required=True, metadata=_TARGET_METADATA)
    weight = fields.Integer(
        strict=True, required=True, validate=validate.Range(MIN_WEIGHT, MAX_WEIGHT)
    )


def _check_variants(variants: list[dict]) -> None:
    if not variants:
        return  # none
    if not MIN_VARIANTS <= len(variants) <= MAX_VARIANTS:
        raise ValidationError(
            f"Give {MIN_VARIANTS} to {MAX_VARIANTS} variants, or none ([] or null)."
        )
    total = sum(variant["weight"] for variant in variants)
    if total != TOTAL_WEIGHT:
        raise ValidationError(f"The weights must add up to {TOTAL_WEIGHT}; they add up to {total}.")


class NoneAsEmpty(fields.List):
    """A list of whole objects where null means empty; dumped as a list, never null."""

    def _deserialize(self, value, attr, data, **kwargs):
        # Every rule and variant is whole, in a PATCH too: a partial load must not reach them.
        kwargs.pop("partial", None)
        return [] if value is None else super()._deserialize(value, attr, data, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if isinstance(value, str):  # a link's column (JSON text)
            value = load_json(value)
        return [] if value is None else super()._serialize(value, attr, obj, **kwargs)


def rules_field(**kwargs) -> fields.List:
    return NoneAsEmpty(
        fields.Nested(RuleSchema),
        allow_none=True,
        validate=validate.Length(max=MAX_RULES),
        metadata={
            "description": f"Checked in order (at most {MAX_RULES}); the first rule whose "
            "conditions all hold sends the visitor to its target; else variants, else target.",
        },
        **kwargs,
    )


def variants_field(**kwargs) -> fields.List:
    return NoneAsEmpty(
        fields.Nested(VariantSchema),
        allow_none=True,
        validate=_check_variants,
        metadata={
            "description": f"A/B split: {MIN_VARIANTS} to {MAX_VARIANTS} targets with weights "
            f"adding up to {TOTAL_WEIGHT}; a visitor keeps a variant for 30 days (a cookie). "
            "Rules are checked first. [] or null: none.",
        },
        **kwargs,
    )


class RulesSchema(Schema):
    """The body and answer of /api/v1.0/links/<slug>/rules: the whole list."""

    class Meta:
        unknown = RAISE

    uri = uri_to("link_rules", slug="slug")
    link = uri_to("link", slug="slug")
    rules = rules_field(required=True)
