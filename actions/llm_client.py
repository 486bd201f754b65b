"""The one HTTP client to the LLM: any OpenAI-compatible server (the embedded llama.cpp service,
vLLM, Ollama, a hosted API), with timeouts, safe retries and typed errors.

`chat(messages)` returns the assistant text of one completion; `structured(messages, schema)` is the
assistant's own structured-output call: JSON that follows a JSON schema (a llama.cpp grammar on the
embedded server, `response_format: json_schema` on any other), validated here; `LLMSchemaError`
when the reply does not follow it.

Settings: LLM_BASE_URL (default http://localhost:8081/v1), LLM_MODEL (empty = the embedded
Qwen2.5-Coder-1.5B-Instruct), LLM_API_KEY (empty = no Authorization header), LLM_TIMEOUT
(seconds, default 10), LLM_MAX_TOKENS (default 80).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Optional

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"


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
