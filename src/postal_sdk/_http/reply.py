"""`Reply`: a whole HTTP reply as the client reads it, from any transport."""

from __future__ import annotations

import httpx

__all__ = ["Reply"]


class Reply:
    """The status, body and headers of a reply read whole.

    The SDK's asyncio pool hands the client its replies as these, not as `httpx.Response`s:
    building a response (its stream, its byte-chunking iterators, its headers) cost more
    CPU per send than parsing the reply. Headers are built only when asked for, which the
    client does only for a reply other than a success.
    """

    __slots__ = ("_headers", "_raw_headers", "content", "status_code")

    def __init__(
        self,
        status_code: int,
        content: bytes,
        headers: httpx.Headers | list[tuple[bytes, bytes]],
    ) -> None:
        self.status_code = status_code
        self.content = content
        self._headers = headers if isinstance(headers, httpx.Headers) else None
        self._raw_headers = headers

    @classmethod
    def of(cls, response: httpx.Response) -> Reply:
        """The reply of a response whose body was read."""
        return cls(response.status_code, response.content, response.headers)

    @property
    def headers(self) -> httpx.Headers:
        """The headers, names compared in any letter case."""
        if self._headers is None:
            self._headers = httpx.Headers(self._raw_headers)
        return self._headers

    @property
    def is_redirect(self) -> bool:
        """A 3xx status, as `httpx.Response.is_redirect`."""
        return 300 <= self.status_code <= 399
