"""The two local models behind the API: Qwen2.5-Coder-1.5B-Instruct chat on llama.cpp and MiniLM
sentence embeddings.

Both are loaded once per process. llama.cpp does the chat template (the one stored in the GGUF),
sampling, JSON-schema grammars (`response_format`) and streaming; this module adds what it lacks:
a per-request time budget (a logits processor that forces end-of-sequence once the deadline has
passed, reported as finish_reason "length") and one generation at a time (a lock: on 2 cores two
concurrent decodes would each run at half speed and both miss their caller's timeout).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np


def _threads() -> int:
    """llama.cpp threads; default: every core the process may use (see docs/llm.md, Latency)."""
    default = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
    return max(1, int(os.environ.get("LLM_THREADS") or default))


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    seconds: float


class Busy(RuntimeError):
    """The model stayed busy with other requests longer than the caller may wait."""


class PromptTooLong(ValueError):
    """The messages (plus max_tokens) do not fit the context window."""


class Deadline:
    """llama.cpp logits processor for the time budget. Past `at` (perf_counter) the answer may
    still finish the sentence it is in, for at most `grace` seconds; then only end-of-sequence
    may follow. A cut mid-sentence costs the whole sentence (the fallback keeps whole ones), so
    the grace turns "...you get an email with return instructions" into a kept sentence."""

    def __init__(self, seconds: float, eos: int, ends_sentence: Any = None,
                 grace: float = 0.0) -> None:
        self.at = time.perf_counter() + seconds
        self.eos = eos
        self.grace = grace
        self.ends_sentence = ends_sentence  # token id -> bool; None: no grace
        self.hit = False

    def __call__(self, ids: Any, logits: np.ndarray) -> np.ndarray:
        now = time.perf_counter()
        if now < self.at:
            return logits
        if (self.ends_sentence is not None and now < self.at + self.grace and len(ids)
                and not self.ends_sentence(int(ids[-1]))):
            return logits
        self.hit = True
        keep = logits[self.eos]
        logits[:] = -np.inf
        logits[self.eos] = keep if np.isfinite(keep) else 0.0
        return logits


class ChatModel:
    """The GGUF chat model through llama-cpp-python."""

    def __init__(self, gguf: Path, model_id: str, n_ctx: Optional[int] = None) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.id = model_id
        self.context_length = int(n_ctx or os.environ.get("LLM_CONTEXT") or 4096)
        self.llama = Llama(model_path=str(gguf), n_ctx=self.context_length, n_batch=512,
                           n_threads=_threads(), n_threads_batch=_threads(), verbose=False)
        self.eos = int(self.llama.token_eos())
        self.formatter = Jinja2ChatFormatter(
            template=self.llama.metadata["tokenizer.chat_template"],
            eos_token=self._text_of(self.eos), bos_token=self._text_of(self.llama.token_bos()))
        self.lock = threading.Lock()
        self.grace = float(os.environ.get("LLM_SENTENCE_GRACE") or 0.5)
        self._ends: dict[int, bool] = {}

    def ends_sentence(self, token: int) -> bool:
        """Whether a token closes a sentence ("." "!" "?" "。", maybe with a quote)."""
        if token not in self._ends:
            text = self._text_of(token).rstrip()
            self._ends[token] = bool(text) and text.rstrip("\"')”’").endswith(
                (".", "!", "?", "。", "！", "？"))
        return self._ends[token]

    def _deadline(self, max_time: float) -> Deadline:
        return Deadline(max_time, self.eos, self.ends_sentence, self.grace)

    def _text_of(self, token: int) -> str:
        return self.llama.detokenize([int(token)], special=True).decode(errors="replace")

    def count_prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        """Tokens of the messages laid out by the GGUF's own chat template (so an oversized
        prompt is refused with a 400 before it waits for the model)."""
        text = self.formatter(messages=messages).prompt
        return len(self.llama.tokenize(text.encode(), add_bos=False, special=True))

    def _args(self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
              top_p: float, stop: list[str], seed: Optional[int],
              response_format: Optional[dict], deadline: Deadline) -> dict[str, Any]:
        from llama_cpp import LogitsProcessorList

        # With a grammar (response_format) the deadline must not force end-of-sequence: where
        # the grammar allows no end there, llama.cpp finds no token to sample and aborts the
        # whole process (GGML_ASSERT in llama_sampler_sample). max_tokens bounds those answers.
        processors = None if response_format else LogitsProcessorList([deadline])
        return dict(messages=messages, max_tokens=max_tokens, temperature=temperature,
                    top_p=top_p, top_k=0 if temperature > 0 else 1, min_p=0.0,
                    repeat_penalty=1.0, stop=stop or [], seed=seed,
                    response_format=response_format, logits_processor=processors)

    def _acquire(self, queue_wait: float) -> None:
        if not self.lock.acquire(timeout=max(0.0, queue_wait)):
            raise Busy(f"the model was busy for {queue_wait:g} s")

    def generate(self, messages: list[dict[str, str]], max_tokens: int, temperature: float = 0.0,
                 top_p: float = 1.0, stop: Optional[list[str]] = None, max_time: float = 30.0,
                 seed: Optional[int] = None, response_format: Optional[dict] = None,
                 queue_wait: float = 60.0) -> Generation:
        """One completion; waits at most `queue_wait` s for the model, then `Busy`."""
        self._acquire(queue_wait)
        try:
            t0 = time.perf_counter()
            deadline = self._deadline(max_time)
            try:
                out = self.llama.create_chat_completion(**self._args(
                    messages, max_tokens, temperature, top_p, stop or [], seed, response_format,
                    deadline))
            except ValueError as exc:  # "Requested tokens (n) exceed context window of m"
                raise PromptTooLong(str(exc)) from exc
            seconds = time.perf_counter() - t0
        finally:
            self.lock.release()
        choice = out["choices"][0]
        finish = "length" if deadline.hit else (choice.get("finish_reason") or "stop")
        usage = out.get("usage") or {}
        return Generation((choice["message"].get("content") or "").strip(),
                          int(usage.get("prompt_tokens", 0)),
                          int(usage.get("completion_tokens", 0)), finish, seconds)

    def stream(self, messages: list[dict[str, str]], max_tokens: int, temperature: float = 0.0,
               top_p: float = 1.0, stop: Optional[list[str]] = None, max_time: float = 30.0,
               seed: Optional[int] = None, response_format: Optional[dict] = None,
               queue_wait: float = 60.0) -> Iterator[tuple[str, Optional[str]]]:
        """Wait for the model (or `Busy`), then return an iterator of (text piece, finish_reason
        or None). A worker thread decodes; when the consumer stops early (client gone), the
        deadline is cut so the model is free again after one more token."""
        self._acquire(queue_wait)
        pieces: queue.Queue = queue.Queue()
        deadline = self._deadline(max_time)

        def work() -> None:
            try:
                chunks = self.llama.create_chat_completion(stream=True, **self._args(
                    messages, max_tokens, temperature, top_p, stop or [], seed, response_format,
                    deadline))
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    piece = (choice.get("delta") or {}).get("content") or ""
                    finish = choice.get("finish_reason")
                    if finish and deadline.hit:
                        finish = "length"
                    if piece or finish:
                        pieces.put((piece, finish))
            except ValueError as exc:
                pieces.put(PromptTooLong(str(exc)))
            except Exception as exc:  # noqa: BLE001 - handed to the consumer
                pieces.put(exc)
            finally:
                self.lock.release()
                pieces.put(None)

        threading.Thread(target=work, daemon=True, name="llm-stream").start()

        def consume() -> Iterator[tuple[str, Optional[str]]]:
            try:
                while (item := pieces.get()) is not None:
                    if isinstance(item, Exception):
                        raise item
                    yield item
            finally:
                deadline.at, deadline.grace = 0.0, 0.0  # consumer gone or done: stop at once

        return consume()


class EmbedModel:
    """all-MiniLM-L6-v2 through the shared numpy encoder (the one retrieval uses)."""

    def __init__(self, folder: Optional[Path] = None, model_id: str = "all-minilm-l6-v2") -> None:
        from llm.minilm import MiniLMEncoder

        self.id = model_id
        self.encoder = MiniLMEncoder(folder)
        self.dim = self.encoder.dim

    def count_tokens(self, texts: list[str]) -> int:
        return self.encoder.count_tokens(texts)

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self.encoder.encode(texts).tolist()
