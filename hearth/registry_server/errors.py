"""API errors: every failure a client can cause becomes a 4xx JSON body naming the thing at fault."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    """Raised by services; `code` is stable for machines, `message` says what is wrong and what to do."""

    def __init__(self, status: int, code: str, message: str, **detail):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


def not_found(what: str, name: str) -> ApiError:
    return ApiError(404, f"{what}_not_found", f"{what} {name!r} not found")


def _body(status: int, code: str, message: str, detail: dict | None = None) -> dict:
    # "message" at the top level too: comfy-cli prints the body text, and ComfyUI's registry uses that key.
    return {"error": {"code": code, "message": message, **({"detail": detail} if detail else {})},
            "message": message}


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        headers = {"WWW-Authenticate": 'Basic realm="hearth"'} if exc.status == 401 else None
        return JSONResponse(_body(exc.status, exc.code, exc.message, exc.detail), exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg')}")
        return JSONResponse(_body(422, "invalid_request", "; ".join(problems) or "invalid request"), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(_body(exc.status_code, code, str(exc.detail)), exc.status_code)
