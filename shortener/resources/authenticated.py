"""Base class of every Resource that needs credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from flask_restful import Resource

from ..auth import login_required, scope_checked


class AuthenticatedResource(Resource):
    """Authentication first (401), then the scope this method needs (403), then the view.

    ``required_scopes`` maps each method ("get", "post", ...) to the token scope it needs, or
    to None when any credential will do; a method left out is a mistake caught at import.
    """

    required_scopes: ClassVar[Mapping[str, str | None]] = {}
    # Applied in order, so login_required is the outermost.
    method_decorators = [scope_checked, login_required]

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        undeclared = {method.lower() for method in cls.methods or ()} - set(cls.required_scopes)
        if undeclared:
            raise TypeError(f"{cls.__name__} names no scope for {', '.join(sorted(undeclared))}")
