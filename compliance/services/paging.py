"""One page of a list: what every paginated service function returns (the API dumps it with `page_of`)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Page:
    """`items` of one 1-based page of `per_page`, out of `total` items. `extra` holds a list's own
    top-level fields beside the page (for example an audit's counts), dumped by that list's schema."""

    items: list[Any]
    page: int
    per_page: int
    total: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.per_page) if self.per_page else 0

    def __getattr__(self, name: str) -> Any:  # marshmallow reads extra fields as attributes
        extra = self.__dict__.get("extra") or {}
        if name in extra:
            return extra[name]
        raise AttributeError(name)

    def map(self, fn) -> Page:
        """The same page with every item passed through fn."""
        return Page([fn(x) for x in self.items], self.page, self.per_page, self.total, self.extra)

    def metadata(self) -> dict[str, int]:
        """flask-smorest's X-Pagination fields: total, total_pages, first/last/previous/next page."""
        out = {"total": self.total, "total_pages": self.pages}
        if self.total:
            out |= {"first_page": 1, "last_page": self.pages}
            if self.page <= self.pages:
                out["page"] = self.page
                if self.page > 1:
                    out["previous_page"] = self.page - 1
                if self.page < self.pages:
                    out["next_page"] = self.page + 1
        return out
