"""Pieces every part of the emulator uses: the API's error answer, object ids and timestamps,
cursor pages, and multipart bodies."""

from __future__ import annotations

import email.parser
import email.policy
import io
import time


class ApiError(Exception):
    """An API error answer: HTTP status and OpenAI's error body fields."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def body(self) -> dict:
        """The JSON the API answers with."""
        return error_body(self.message, self.kind, self.param, self.code)


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def now() -> int:
    """A timestamp as the API writes them: whole seconds since the epoch."""
    return int(time.time())


def public(record: dict) -> dict:
    """An object as the API shows it, without the emulator's own fields (those starting with _)."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def page(items: list, query: dict, default_limit: int = 20) -> dict:
    """One cursor page: the items after `after`, at most `limit`, and whether more follow."""
    limit = int(query.get("limit", default_limit))
    after = query.get("after")
    if after:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit,
            "first_id": items[0]["id"] if items else None,
            "last_id": items[:limit][-1]["id"] if items else None}


def multipart(request) -> dict:
    """The fields of a multipart/form-data body: text, or (filename, bytes) for files."""
    body = request.read() if hasattr(request, "read") else request.content
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parse(io.BytesIO(head + body))
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        fields[name] = (filename, data) if filename is not None else data.decode()
    return fields
