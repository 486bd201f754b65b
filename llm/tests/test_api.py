"""LLM service API: bad input -> 4xx in OpenAI's error shape (stub models), and one real-model run.
Run: .venv-services/bin/python -m pytest llm/tests
"""

from __future__ import annotations

import os

import pytest
import torch
from fastapi.testclient import TestClient

from llm.app import create_app
from llm.models import Generation

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class StubChat:
    context_length = 8192

    def prompt_ids(self, messages):
        return torch.zeros((1, 10 * len(messages)), dtype=torch.long)

    def generate(self, messages, **kw):
        return Generation("stub answer", 10, 2, "stop", 0.01)

    def stream(self, messages, **kw):
        yield from ["stub ", "answer"]


class StubEmbed:
    def embed(self, texts):
        return [[0.5, 0.5] for _ in texts]

    def count_tokens(self, texts):
        return len(texts)


@pytest.fixture(scope="module")
def stub_client():
    with TestClient(create_app(load_models=False, chat=StubChat(), embed=StubEmbed())) as c:
        yield c


def _is_openai_error(resp) -> bool:
    body = resp.json()
    return set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"])


@pytest.mark.parametrize("payload", [
    {},
    {"messages": []},
    {"messages": [{"role": "wizard", "content": "hi"}]},
    {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0},
    {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000},
    {"messages": [{"role": "user", "content": "hi"}], "temperature": 5},
    {"messages": [{"role": "user", "content": "hi"}], "n": 3},
    {"messages": [{"role": "user", "content": "  "}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
    {"messages": "hello"},
])
def test_bad_chat_input_is_400(stub_client, payload):
    resp = stub_client.post("/v1/chat/completions", json=payload)
    assert resp.status_code == 400, resp.text
    assert _is_openai_error(resp)


def test_not_json_is_400(stub_client):
    resp = stub_client.post("/v1/chat/completions", content=b"{not json",
                            headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and _is_openai_error(resp)


def test_unknown_model_is_404(stub_client):
    payload = {"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}
    resp = stub_client.post("/v1/chat/completions", json=payload)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("payload", [{}, {"input": []}, {"input": [""]}, {"input": 42},
                                     {"input": "x", "model": "nope"}])
def test_bad_embedding_input_is_4xx(stub_client, payload):
    resp = stub_client.post("/v1/embeddings", json=payload)
    assert 400 <= resp.status_code < 500 and _is_openai_error(resp)


def test_unknown_path_is_404(stub_client):
    resp = stub_client.get("/v1/nothing")
    assert resp.status_code == 404 and _is_openai_error(resp)


def test_stub_shapes(stub_client):
    assert stub_client.get("/health").json()["status"] == "ok"
    ids = [m["id"] for m in stub_client.get("/v1/models").json()["data"]]
    assert ids == ["smollm2-135m-instruct", "all-minilm-l6-v2"]
    resp = stub_client.post("/v1/chat/completions",
                            json={"messages": [{"role": "user", "content": "hi"}], "stream": True})
    assert resp.status_code == 200 and resp.text.rstrip().endswith("data: [DONE]")
    assert '"content": "stub "' in resp.text
    emb = stub_client.post("/v1/embeddings", json={"input": "hi", "encoding_format": "base64"})
    assert emb.status_code == 200 and isinstance(emb.json()["data"][0]["embedding"], str)


def test_not_loaded_is_503():
    with TestClient(create_app(load_models=False)) as c:
        resp = c.get("/health")
        assert resp.status_code == 503 and _is_openai_error(resp)


# ---------------------------------------------------------------- the real local model
@pytest.fixture(scope="module")
def real_client():
    with TestClient(create_app()) as c:  # converts first if `python -m llm.convert` was not run
        yield c


def test_real_model_endpoints(real_client):
    """One short real generation (CPU: ~15 tokens/s) plus real embeddings."""
    resp = real_client.post("/v1/chat/completions", json={
        "model": "smollm2-135m-instruct", "max_tokens": 8, "temperature": 0,
        "messages": [{"role": "system", "content": "Refunds to a credit card take 5 to 7 "
                      "business days."},
                     {"role": "user", "content": "How long do credit card refunds take?"}]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"].strip()
    assert 1 <= body["usage"]["completion_tokens"] <= 8  # max_tokens honoured
    emb = real_client.post("/v1/embeddings", json={"input": ["refund to my card", "card refund",
                                                             "weather in Paris"]}).json()
    v = [torch.tensor(d["embedding"]) for d in emb["data"]]
    assert len(v[0]) == 384 and abs(float(v[0].norm()) - 1) < 1e-4
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])
