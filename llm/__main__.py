"""`python -m llm` — serve the OpenAI-compatible API on LLM_PORT (default 8081)."""

from __future__ import annotations

import os

import uvicorn

from llm.app import create_app


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    host = os.environ.get("LLM_HOST", "127.0.0.1")
    port = int(os.environ.get("LLM_PORT", "8081"))
    uvicorn.run(create_app(), host=host, port=port, log_level="warning", timeout_keep_alive=30)


if __name__ == "__main__":
    main()
