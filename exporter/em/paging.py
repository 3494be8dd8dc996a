"""The query service's paging: following `Next` links on our own base URL, and reading a count from a
first page. EM versions differ on empty results; none of their ways is an error here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from exporter.em.errors import EMError
from exporter.em.model import Page

if TYPE_CHECKING:  # the session is passed in; paging needs only its type
    from exporter.em.session import EMSession

_T = TypeVar("_T")


def pages(
    session: EMSession, path: str, endpoint: str, parser: Callable[[bytes], Page[_T]], max_pages: int
) -> Iterator[Page[_T]]:
    """Every page of a query, following `Next`. No `Next`, or a page with no items, ends the result
    whatever PagesCount says: EM versions differ on empty results (PagesCount 0 or 1, or no
    PagingInfo at all), and none of those is an error."""
    seen: set[str] = set()
    next_path: str | None = path
    announced: int | None = None  # PagesCount on the first page, if it gave one
    while next_path is not None:
        if len(seen) >= max_pages:
            raise EMError("paging", f"{endpoint}: more than {max_pages} pages; stopped following Next")
        seen.add(next_path)
        page = session.get_parsed(next_path, endpoint, parser)
        announced = page.pages_count if announced is None else announced
        if announced and len(seen) > announced:
            # an EM that pages forever: it said how many pages there are, believe that
            raise EMError("paging", f"{endpoint}: EM offers page {len(seen)} of {announced}; stopped")
        yield page
        if not page.items and not page.errors:
            return
        next_path = api_relative(session.base_url, page.next_path)
        if next_path in seen:
            raise EMError("paging", f"{endpoint}: the Next link points back to a page already read")


def api_relative(base_url: str, link: str | None) -> str | None:
    """An EM link, made relative to our base URL's `/api`. EM writes absolute links naming the host
    it believes it has (often `localhost`) and no path prefix a reverse proxy in front of it adds,
    so only what follows `/api/` in the link is used."""
    if link is None:
        return None
    parts = urlsplit(link)
    path = parts.path
    base_path = urlsplit(base_url).path
    if path.startswith(base_path + "/"):
        rest = path[len(base_path) :]
    elif "/api/" in path:
        rest = path[path.index("/api/") + len("/api") :]
    else:
        raise EMError("paging", "EM link outside the API path")
    return rest + ("?" + parts.query if parts.query else "")


def count_from_page(page: Page[str]) -> int | None:
    """The number of items a query has, from its first page asked with pageSize=1: the page's item
    count when everything fits on it, PagesCount when EM paged at one item, None when the answer does
    not say (no PagingInfo but a Next link; or more than one item and more pages)."""
    n = len(page.items) + len(page.errors)
    if n == 0:
        return 0
    if n == 1 and page.pages_count is not None:
        return max(page.pages_count, 1)
    if page.next_path is None and (page.pages_count is None or page.pages_count <= 1):
        return n  # EM ignored pageSize and answered all of them
    return None
