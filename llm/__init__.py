"""Embedded OpenAI-compatible LLM service.

Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) on llama.cpp for chat, all-MiniLM-L6-v2 (numpy) for
embeddings, both from local packages.
"""
