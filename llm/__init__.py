"""Embedded OpenAI-compatible LLM service (SmolLM2-135M-Instruct chat + all-MiniLM-L6-v2 embeddings)."""
