"""The one HTTP client to the LLM: any OpenAI-compatible server (the embedded llama.cpp service,
vLLM, Ollama, a hosted API), with timeouts, safe retries and typed errors.

`chat(messages)` returns the assistant text of one completion; `structured(messages, schema)` is the
assistant's own structured-output call: JSON that follows a JSON schema (a llama.cpp grammar on the
embedded server, `response_format: json_schema` on any other), validated here; `LLMSchemaError`
when the reply does not follow it.

Settings: LLM_BASE_URL (default http://localhost:8081/v1), LLM_MODEL (empty = the embedded
Qwen2.5-Coder-1.5B-Instruct), LLM_API_KEY (empty = no Authorization header), LLM_TIMEOUT
(seconds, default 10), LLM_MAX_TOKENS (default 80).

`llm_pool()` is the action server's own bounded pool for work that calls the LLM (issue 22):
LLM_CONCURRENCY threads (default 2), and a question waits at most LLM_QUEUE_WAIT seconds (default
3) for one of them, then gets `LLMBusy` (the fallback's polite "can't answer that right now /
human agent"). The actions' shop calls run on asyncio's default executor, which free-form
questions then never fill: a slow LLM delays only the questions asked of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"
DEFAULT_CONCURRENCY = 2
DEFAULT_QUEUE_WAIT = 3.0

logger = logging.getLogger(__name__)
T = TypeVar("T")


class LLMError(Exception):
    """The LLM gave no usable answer."""


class LLMUnavailable(LLMError):
    """Connection refused / DNS / reset: the server is not there."""


class LLMTimeout(LLMError):
    """No answer within LLM_TIMEOUT seconds."""


class LLMBadResponse(LLMError):
    """HTTP error status, or a body that is not an OpenAI chat completion."""


class LLMSchemaError(LLMBadResponse):
    """A structured reply that is not JSON or does not follow the requested schema."""


class LLMBusy(LLMError):
    """No slot of the LLM pool freed within LLM_QUEUE_WAIT seconds: the LLM was not asked."""


@dataclass
class LLMConfig:
    base_url: str = "http://localhost:8081/v1"
    model: str = DEFAULT_MODEL
    api_key: str = ""
    timeout: float = 10.0
    max_tokens: int = 80

    @classmethod
    def from_env(cls) -> LLMConfig:
        return cls(
            base_url=(os.environ.get("LLM_BASE_URL") or cls.base_url).rstrip("/"),
            model=os.environ.get("LLM_MODEL") or DEFAULT_MODEL,
            api_key=os.environ.get("LLM_API_KEY") or "",
            timeout=float(os.environ.get("LLM_TIMEOUT") or 10),
            max_tokens=int(os.environ.get("LLM_MAX_TOKENS") or 80),
        )


class LLMClient:
    """Minimal OpenAI chat-completions client over requests.

    Retries only what is safe and cheap: connection failures (nothing reached the server) and
    502/503/504 (proxy or not-ready answers). A read timeout is not retried: the whole turn must
    stay inside LLM_TIMEOUT. Chat completions change nothing, so a retried POST is harmless.
    """

    def __init__(self, config: Optional[LLMConfig] = None) -> None:
        self.config = config or LLMConfig.from_env()
        retry = Retry(total=2, connect=2, read=False, status=1, backoff_factor=0.2,
                      status_forcelist=(502, 503, 504), allowed_methods=frozenset({"POST", "GET"}),
                      raise_on_status=False, respect_retry_after_header=False)
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def chat(self, messages: list[dict[str, str]], max_tokens: Optional[int] = None,
             temperature: float = 0.0) -> str:
        """Return the assistant text of one completion, or raise a typed LLMError."""
        return self._complete(messages, max_tokens, temperature, None, None)

    def structured(self, messages: list[dict[str, str]], schema: dict[str, Any], *,
                   name: str = "response", max_tokens: int = 200,
                   timeout: Optional[float] = None) -> Any:
        """JSON following `schema`, or a typed LLMError (`LLMSchemaError` when the reply is not
        JSON or breaks the schema). The embedded server constrains decoding with a grammar made
        from the schema; other servers get OpenAI's `json_schema` response format, and the reply
        is validated here either way."""
        import jsonschema  # a Rasa dependency

        fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": schema,
                                                      "strict": True}}
        text = self._complete(messages, max_tokens, 0.0, fmt, timeout)
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise LLMSchemaError(f"reply is not JSON: {text[:200]!r}") from exc
        try:
            jsonschema.validate(value, schema)
        except jsonschema.ValidationError as exc:
            raise LLMSchemaError(f"reply breaks the schema: {exc.message}") from exc
        return value

    def _complete(self, messages: list[dict[str, str]], max_tokens: Optional[int],
                  temperature: float, response_format: Optional[dict],
                  timeout: Optional[float]) -> str:
        cfg = self.config
        timeout = timeout or cfg.timeout
        body: dict[str, Any] = {"model": cfg.model, "messages": messages,
                                "temperature": temperature,
                                "max_tokens": max_tokens or cfg.max_tokens, "stream": False}
        if response_format:
            body["response_format"] = response_format
        try:
            resp = self.session.post(f"{cfg.base_url}/chat/completions", json=body,
                                     headers=self._headers(),
                                     timeout=(min(2.0, timeout), timeout))
        except requests.ConnectTimeout as exc:
            raise LLMUnavailable(f"cannot reach {cfg.base_url}") from exc
        except requests.Timeout as exc:
            raise LLMTimeout(f"no answer in {timeout:g} s") from exc
        except requests.ConnectionError as exc:
            if "timed out" in str(exc).lower():
                raise LLMTimeout(f"no answer in {timeout:g} s") from exc
            raise LLMUnavailable(f"cannot reach {cfg.base_url}") from exc
        except requests.RequestException as exc:
            raise LLMUnavailable(str(exc)) from exc
        if resp.status_code >= 400:
            raise LLMBadResponse(f"HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            content = resp.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMBadResponse(f"not a chat completion: {resp.text[:200]!r}") from exc
        if not isinstance(content, str):
            raise LLMBadResponse("message content is not text")
        return content


class LLMPool:
    """A bounded executor for work that calls the LLM, with a bounded wait for a slot.

    ``await pool.run(fn, *args)`` runs ``fn`` on one of ``concurrency`` threads of its own. While
    every thread is busy the call waits, in submission order and without holding any other
    thread or the event loop, for at most ``queue_wait`` seconds; then it is withdrawn (it never
    runs) and ``LLMBusy`` is raised. A call that has started is awaited to its end: the LLM
    client's own timeout (LLM_TIMEOUT) bounds it.

    Why 2: the embedded LLM service generates one answer at a time on 2 cores and queues the
    next (LLM_MAX_QUEUE_WAIT); a second thread keeps it busy while the first one's answer is
    checked, more threads would only wait there. A hosted API with more capacity may get more.
    Why 3 s: a free-form answer takes 1.5-2.5 s on the embedded model, so a question that waits
    3 s more has waited for one or two answers; past that the shopper is better served by "I
    can't answer that right now" and the offer of a human agent than by a spinner.
    """

    def __init__(self, concurrency: int = DEFAULT_CONCURRENCY,
                 queue_wait: float = DEFAULT_QUEUE_WAIT) -> None:
        if concurrency < 1:
            raise ValueError(f"LLM_CONCURRENCY must be at least 1, not {concurrency}")
        if queue_wait < 0:
            raise ValueError(f"LLM_QUEUE_WAIT must be 0 or more seconds, not {queue_wait}")
        self.concurrency = concurrency
        self.queue_wait = queue_wait
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="llm")
        self._lock = threading.Lock()
        self.running = 0  # for tests and logs
        self.refused = 0

    @classmethod
    def from_env(cls) -> LLMPool:
        return cls(int(os.environ.get("LLM_CONCURRENCY") or DEFAULT_CONCURRENCY),
                   float(os.environ.get("LLM_QUEUE_WAIT") or DEFAULT_QUEUE_WAIT))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a thread of the pool; ``LLMBusy`` when no slot frees in time."""
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        def job() -> T:
            with self._lock:
                self.running += 1
            loop.call_soon_threadsafe(started.set)
            try:
                return fn(*args)
            finally:
                with self._lock:
                    self.running -= 1

        future = self._executor.submit(job)
        try:
            # (a free thread still takes a moment to start the job: 0 means "only a free slot")
            await asyncio.wait_for(started.wait(), max(self.queue_wait, 0.05))
        except asyncio.TimeoutError:
            if future.cancel():  # still queued: withdrawn, it will never run
                with self._lock:
                    self.refused += 1
                logger.warning("LLM pool: all %d slots busy for %.1f s, question not asked",
                               self.concurrency, self.queue_wait)
                raise LLMBusy(f"no LLM slot free within {self.queue_wait:g} s") from None
            # it started just now: wait for its answer like any other
        except asyncio.CancelledError:
            future.cancel()
            raise
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


_POOL: Optional[LLMPool] = None
_POOL_LOCK = threading.Lock()


def llm_pool() -> LLMPool:
    """The process's LLM pool (settings from the environment on first use)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = LLMPool.from_env()
            logger.info("LLM pool: %d slots, %.1f s wait for one", _POOL.concurrency,
                        _POOL.queue_wait)
        return _POOL


def set_llm_pool(pool: Optional[LLMPool]) -> None:
    """Replace the process's pool (tests); None: the next ``llm_pool()`` reads the environment."""
    global _POOL
    with _POOL_LOCK:
        _POOL = pool
