"""The two local models behind the API: SmolLM2 chat and MiniLM sentence embeddings.

Both are loaded once per process. Generation is serialised by a lock: on a 2-core machine two
concurrent decodes would each run at half speed and both miss their caller's timeout.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch


def _threads() -> int:
    """torch intra-op threads; default 1. Measured on the shared 2-core machine under load:
    1 thread decodes at 9-11 tokens/s with 0.4 s prefill, 2 threads at 1.4-3 tokens/s with
    2-6 s prefill (each op waits for the slower, preempted thread). Set LLM_THREADS on a
    dedicated machine."""
    return max(1, int(os.environ.get("LLM_THREADS", "1")))


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    seconds: float


class ChatModel:
    """SmolLM2-135M-Instruct from the converted folder (see llm.convert)."""

    def __init__(self, folder: Path, model_id: str) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(_threads())
        self.id = model_id
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        self.model.eval()
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self.lock = threading.Lock()

    def prompt_ids(self, messages: list[dict[str, str]]) -> torch.Tensor:
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return ids["input_ids"]

    def _gen_kwargs(
        self, max_tokens: int, temperature: float, top_p: float, stop: list[str], max_time: float,
        seed: int | None,
    ) -> dict:
        kwargs: dict = {
            "max_new_tokens": max_tokens,
            "max_time": max_time,
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            "repetition_penalty": 1.1,
        }
        if temperature > 0:
            if seed is not None:
                torch.manual_seed(seed)
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if stop:
            kwargs.update(stop_strings=stop, tokenizer=self.tokenizer)
        return kwargs

    def generate(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float = 0.0,
        top_p: float = 1.0, stop: list[str] | None = None, max_time: float = 30.0,
        seed: int | None = None,
    ) -> Generation:
        input_ids = self.prompt_ids(messages)
        kwargs = self._gen_kwargs(max_tokens, temperature, top_p, stop or [], max_time, seed)
        with self.lock, torch.inference_mode():
            t0 = time.perf_counter()
            mask = torch.ones_like(input_ids)
            out = self.model.generate(input_ids, attention_mask=mask, **kwargs)
            seconds = time.perf_counter() - t0
        new = out[0, input_ids.shape[1]:]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        text = _cut_at_stop(text, stop or [])
        hit_eos = len(new) > 0 and int(new[-1]) == self.tokenizer.eos_token_id
        finish = "length" if len(new) >= max_tokens and not hit_eos else "stop"
        return Generation(text.strip(), int(input_ids.shape[1]), int(len(new)), finish, seconds)

    def stream(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float = 0.0,
        top_p: float = 1.0, stop: list[str] | None = None, max_time: float = 30.0,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield text pieces as they are decoded (generation runs in a worker thread)."""
        from transformers import TextIteratorStreamer

        input_ids = self.prompt_ids(messages)
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=max_time + 5
        )
        kwargs = self._gen_kwargs(max_tokens, temperature, top_p, stop or [], max_time, seed)

        def run() -> None:
            with self.lock, torch.inference_mode():
                self.model.generate(
                    input_ids, attention_mask=torch.ones_like(input_ids), streamer=streamer,
                    **kwargs,
                )

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        yield from streamer
        worker.join()


def _cut_at_stop(text: str, stop: list[str]) -> str:
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if i >= 0:
            cut = min(cut, i)
    return text[:cut]


class EmbedModel:
    """all-MiniLM-L6-v2: mean pooling, then L2 normalisation (as sentence-transformers does)."""

    max_length = 256

    def __init__(self, folder: Path, model_id: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.id = model_id
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder)
        self.model.eval()
        self.dim = int(self.model.config.hidden_size)

    def count_tokens(self, texts: list[str]) -> int:
        return sum(len(self.tokenizer(t, truncation=True, max_length=self.max_length)["input_ids"])
                   for t in texts)

    def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        with torch.inference_mode():
            for i in range(0, len(texts), 32):
                batch = self.tokenizer(
                    texts[i:i + 32], padding=True, truncation=True, max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out.extend(pooled.tolist())
        return out
