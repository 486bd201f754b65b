"""OpenAI-compatible HTTP API over the local models (llama.cpp chat + numpy MiniLM embeddings).

llama-cpp-python's own server (`llama_cpp.server`) was evaluated first; docs/llm.md says what it
lacks for this product and why this thin app is kept: bad input answered as a 4xx in OpenAI's
shape (it answers invalid JSON with a 500), a per-request time budget, a bounded wait for the one
model instead of unbounded queueing, and `/v1/embeddings` for a model that is not a GGUF.
Errors use OpenAI's shape `{"error": {"message", "type", "param", "code"}}`: 4xx for bad input,
429 when the model stayed busy, 503 when it cannot answer; never a bare 500.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import struct
import time
import uuid
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Any, Literal, Union

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from llm.models import Busy, PromptTooLong
from llm.paths import CHAT_MODEL_ID, EMBED_MODEL_ID

log = logging.getLogger("llm")

MAX_TOKENS_LIMIT = int(os.environ.get("LLM_MAX_TOKENS_LIMIT", "512"))
DEFAULT_MAX_TOKENS = int(os.environ.get("LLM_DEFAULT_MAX_TOKENS", "256"))
# Time budget per generation (s), counted from when the model starts on the request: past it
# the text so far is returned with finish_reason "length" (a request may ask for less or more
# with the extension field `max_time`, up to MAX_TIME_LIMIT). 3 s keeps a whole fallback turn
# under the 4 s target; a cut-off answer is replaced by the passage.
MAX_TIME = float(os.environ.get("LLM_MAX_TIME", "3.0"))
MAX_TIME_LIMIT = 60.0
# How long a request may wait for the model while it serves others (s); then 429 "busy", so a
# caller gets a fast answer it can replace (the fallback quotes the passage) instead of waiting
# past its own timeout. 6 s + MAX_TIME stays inside the action server's LLM_TIMEOUT (10 s).
MAX_QUEUE_WAIT = float(os.environ.get("LLM_MAX_QUEUE_WAIT", "6.0"))
MAX_PROMPT_TOKENS = int(os.environ.get("LLM_MAX_PROMPT_TOKENS", "3072"))  # CPU: keep prompts small
MAX_EMBED_INPUTS = 256
CHAT_ALIASES = {CHAT_MODEL_ID, "Qwen/Qwen2.5-Coder-1.5B-Instruct", "Qwen2.5-Coder-1.5B-Instruct",
                "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF"}
EMBED_ALIASES = {EMBED_MODEL_ID, "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type_
        self.param, self.code = param, code


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[str, list[ContentPart], None] = None


class JsonSchemaSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = "response"
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """OpenAI's `{"type": "json_schema", "json_schema": {"name", "schema"}}`, `json_object`
    (llama-cpp-python's variant may carry a `schema` too) or `text`."""

    model_config = ConfigDict(extra="allow")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = CHAT_MODEL_ID
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=1)
    stream: bool = False
    stop: Union[str, list[str], None] = None
    seed: int | None = None
    response_format: ResponseFormat | None = None
    max_time: float | None = Field(default=None, gt=0.0, le=MAX_TIME_LIMIT)  # extension


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = EMBED_MODEL_ID
    input: Union[str, list[str]]
    encoding_format: Literal["float", "base64"] = "float"


def _text_of(msg: Message) -> str:
    if msg.content is None:
        return ""
    if isinstance(msg.content, str):
        return msg.content
    parts = []
    for p in msg.content:
        if p.type != "text" or p.text is None:
            raise ApiError(400, f"content part type {p.type!r} is not supported (text only)",
                           param="messages", code="unsupported_content")
        parts.append(p.text)
    return "\n".join(parts)


def llama_response_format(fmt: ResponseFormat | None) -> dict | None:
    """The request's response_format as llama-cpp-python takes it; an unusable schema -> 400."""
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_schema":
        if fmt.json_schema is None:
            raise ApiError(400, "response_format.json_schema is required for type json_schema",
                           param="response_format", code="invalid_value")
        schema = fmt.json_schema.schema_
    else:
        schema = fmt.schema_
    if schema is None:
        return {"type": "json_object"}
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # noqa: BLE001 - the converter raises several kinds
        raise ApiError(400, f"response_format schema is not supported: {exc}",
                       param="response_format", code="invalid_value") from exc
    return {"type": "json_object", "schema": schema}


def create_app(load_models: bool = True, chat: Any = None, embed: Any = None) -> FastAPI:
    """Build the app; tests may pass their own model objects and skip loading."""
    state: dict[str, Any] = {"chat": chat, "embed": embed}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if load_models:
            from llm.assemble import assemble
            from llm.models import ChatModel, EmbedModel
            from llm.paths import embed_dir, gguf_path

            t0 = time.perf_counter()
            gguf = gguf_path() if os.environ.get("LLM_GGUF_PATH") else assemble()
            state["chat"] = state["chat"] or await run_in_threadpool(ChatModel, gguf,
                                                                     CHAT_MODEL_ID)
            state["embed"] = state["embed"] or EmbedModel(embed_dir(), EMBED_MODEL_ID)
            log.warning("models loaded in %.1f s", time.perf_counter() - t0)
        yield

    app = FastAPI(title="Shop assistant LLM service (OpenAI-compatible)", lifespan=lifespan)

    @app.exception_handler(ApiError)
    async def _api_error(_r: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.type, exc.param, exc.code), exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = [str(x) for x in first.get("loc", []) if x != "body"]
        msg = f"{'.'.join(loc) or 'body'}: {first.get('msg', 'invalid request')}"
        return JSONResponse(error_body(msg, "invalid_request_error", ".".join(loc) or None,
                                       "invalid_value"), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else None
        return JSONResponse(error_body(str(exc.detail), "invalid_request_error", None, code),
                            exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_r: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(error_body("the model could not answer; try again", "server_error",
                                       None, "model_error"), 503)

    def _need(name: str) -> Any:
        model = state.get(name)
        if model is None:
            raise ApiError(503, "model not loaded yet", "server_error", code="model_not_ready")
        return model

    @app.get("/health")
    async def health() -> dict:
        ok = state["chat"] is not None and state["embed"] is not None
        if not ok:
            raise ApiError(503, "models not loaded", "server_error", code="model_not_ready")
        return {"status": "ok", "models": [CHAT_MODEL_ID, EMBED_MODEL_ID]}

    @app.get("/v1/models")
    async def models() -> dict:
        now = int(time.time())
        return {"object": "list", "data": [
            {"id": CHAT_MODEL_ID, "object": "model", "created": now, "owned_by": "local"},
            {"id": EMBED_MODEL_ID, "object": "model", "created": now, "owned_by": "local"},
        ]}

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatRequest):
        if req.model not in CHAT_ALIASES:
            raise ApiError(404, f"The model {req.model!r} does not exist", param="model",
                           code="model_not_found")
        chat = _need("chat")
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": _text_of(m)}
                    for m in req.messages]
        if not any(m["content"].strip() for m in messages):
            raise ApiError(400, "messages are empty", param="messages", code="invalid_value")
        max_tokens = req.max_completion_tokens or req.max_tokens or DEFAULT_MAX_TOKENS
        if max_tokens > MAX_TOKENS_LIMIT:
            raise ApiError(400, f"max_tokens must be <= {MAX_TOKENS_LIMIT}", param="max_tokens",
                           code="invalid_value")
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        if len(stop) > 4:
            raise ApiError(400, "at most 4 stop sequences", param="stop", code="invalid_value")
        fmt = llama_response_format(req.response_format)
        try:
            n_prompt = await run_in_threadpool(chat.count_prompt_tokens, messages)
        except Exception as exc:  # e.g. a role order the chat template rejects
            raise ApiError(400, f"messages rejected by the chat template: {exc}",
                           param="messages", code="invalid_value") from exc
        if n_prompt > MAX_PROMPT_TOKENS or n_prompt + max_tokens > chat.context_length:
            raise ApiError(400, f"prompt has {n_prompt} tokens; limit is {MAX_PROMPT_TOKENS} "
                           f"(context {chat.context_length} incl. max_tokens)",
                           param="messages", code="context_length_exceeded")
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        args = dict(max_tokens=max_tokens, temperature=req.temperature, top_p=req.top_p,
                    stop=stop, max_time=req.max_time or MAX_TIME, seed=req.seed,
                    response_format=fmt, queue_wait=MAX_QUEUE_WAIT)
        try:
            if req.stream:
                pieces = await run_in_threadpool(chat.stream, messages, **args)
                return StreamingResponse(_sse(pieces, cid, created),
                                         media_type="text/event-stream")
            gen = await run_in_threadpool(chat.generate, messages, **args)
        except Busy as exc:
            raise ApiError(429, f"{exc}; try again shortly", "server_busy",
                           code="server_busy") from exc
        except PromptTooLong as exc:
            raise ApiError(400, str(exc), param="messages",
                           code="context_length_exceeded") from exc
        return {
            "id": cid, "object": "chat.completion", "created": created, "model": CHAT_MODEL_ID,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": gen.text},
                         "finish_reason": gen.finish_reason, "logprobs": None}],
            "usage": {"prompt_tokens": gen.prompt_tokens,
                      "completion_tokens": gen.completion_tokens,
                      "total_tokens": gen.prompt_tokens + gen.completion_tokens},
        }

    @app.post("/v1/embeddings")
    async def embeddings(req: EmbeddingRequest) -> dict:
        if req.model not in EMBED_ALIASES:
            raise ApiError(404, f"The model {req.model!r} does not exist", param="model",
                           code="model_not_found")
        texts = [req.input] if isinstance(req.input, str) else req.input
        if not texts or len(texts) > MAX_EMBED_INPUTS:
            raise ApiError(400, f"input must hold 1 to {MAX_EMBED_INPUTS} strings", param="input",
                           code="invalid_value")
        if any(not t.strip() for t in texts):
            raise ApiError(400, "input strings must not be empty", param="input",
                           code="invalid_value")
        model = _need("embed")
        vectors = await run_in_threadpool(model.embed, texts)
        n_tokens = await run_in_threadpool(model.count_tokens, texts)
        data = []
        for i, vec in enumerate(vectors):
            emb: Any = vec
            if req.encoding_format == "base64":
                emb = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        return {"object": "list", "data": data, "model": EMBED_MODEL_ID,
                "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}}

    return app


def _sse(pieces: Iterator[tuple[str, str | None]], cid: str, created: int) -> Iterator[str]:
    def chunk(delta: dict, finish: str | None) -> str:
        body = {"id": cid, "object": "chat.completion.chunk", "created": created,
                "model": CHAT_MODEL_ID,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""}, None)
    finish: str | None = None
    try:
        for piece, finish_reason in pieces:
            finish = finish_reason or finish
            if piece:
                yield chunk({"content": piece}, None)
        yield chunk({}, finish or "stop")
    except Exception:  # the stream has started: report in-band, as OpenAI does
        log.exception("stream failed")
        yield f"data: {json.dumps(error_body('generation failed', 'server_error'))}\n\n"
    yield "data: [DONE]\n\n"
