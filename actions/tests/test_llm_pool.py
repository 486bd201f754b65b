"""The LLM's own bounded pool (actions/llm_client.py) and how the fallback uses it (issue 22)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Iterator, List

import pytest

from actions.fallback import ActionFallback
from actions.grounding import ERROR_REPLY
from actions.llm_client import LLMBusy, LLMPool, llm_pool, set_llm_pool
from actions.tests.conftest import MOHAMED, Conversation, identified_slots


@pytest.fixture
def pool() -> Iterator[LLMPool]:
    """A small pool installed as the process's, the previous one back afterwards."""
    small = LLMPool(concurrency=1, queue_wait=0.2)
    set_llm_pool(small)
    yield small
    set_llm_pool(None)
    small.shutdown()


class Gate:
    """A job that holds its slot until opened."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self) -> str:
        self.entered.set()
        assert self.opened.wait(10)
        return "done"


def test_the_pool_never_runs_more_than_its_concurrency() -> None:
    pool = LLMPool(concurrency=2, queue_wait=10)
    lock, running, peak = threading.Lock(), [0], [0]

    def job(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.15)
        with lock:
            running[0] -= 1
        return i

    async def main() -> List[int]:
        return list(await asyncio.gather(*(pool.run(job, i) for i in range(6))))

    assert asyncio.run(main()) == list(range(6))  # every one waited for its turn and ran
    assert peak[0] == 2
    pool.shutdown()


def test_a_call_that_gets_no_slot_in_time_is_withdrawn_and_busy() -> None:
    pool = LLMPool(concurrency=1, queue_wait=0.2)
    gate, ran = Gate(), threading.Event()

    async def main() -> None:
        holder = asyncio.ensure_future(pool.run(gate))
        await asyncio.to_thread(gate.entered.wait, 5)
        with pytest.raises(LLMBusy):
            await pool.run(ran.set)
        gate.opened.set()
        assert await holder == "done"

    asyncio.run(main())
    time.sleep(0.1)
    assert not ran.is_set()  # withdrawn: it never ran, not even after the slot freed
    assert pool.refused == 1
    pool.shutdown()


def test_waiting_calls_run_in_their_order_when_a_slot_frees() -> None:
    pool = LLMPool(concurrency=1, queue_wait=5)
    order: List[str] = []

    def job(name: str) -> str:
        time.sleep(0.05)
        order.append(name)
        return name

    async def main() -> None:
        await asyncio.gather(*(pool.run(job, name) for name in "abcd"))

    asyncio.run(main())
    assert order == list("abcd")
    pool.shutdown()


def test_a_waiting_call_holds_neither_the_event_loop_nor_the_default_executor() -> None:
    """What the order actions use (asyncio.to_thread for the shop) goes on while every LLM slot
    is busy and questions wait for one."""
    pool = LLMPool(concurrency=1, queue_wait=5)
    gate = Gate()
    finished: List[str] = []

    async def question(i: int) -> None:
        try:
            await pool.run(gate if i == 0 else (lambda: "late"))
        finally:
            finished.append(f"question {i}")

    async def order_turn() -> None:
        await asyncio.to_thread(gate.entered.wait, 5)
        await asyncio.gather(*(asyncio.to_thread(time.sleep, 0.01) for _ in range(16)))
        finished.append("order")
        gate.opened.set()

    async def main() -> None:
        await asyncio.gather(*(question(i) for i in range(8)), order_turn())

    asyncio.run(main())
    assert finished[0] == "order"
    pool.shutdown()


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_CONCURRENCY", raising=False)
    monkeypatch.delenv("LLM_QUEUE_WAIT", raising=False)
    default = LLMPool.from_env()
    assert (default.concurrency, default.queue_wait) == (2, 3.0)
    monkeypatch.setenv("LLM_CONCURRENCY", "4")
    monkeypatch.setenv("LLM_QUEUE_WAIT", "1.5")
    custom = LLMPool.from_env()
    assert (custom.concurrency, custom.queue_wait) == (4, 1.5)
    monkeypatch.setenv("LLM_CONCURRENCY", "0")
    with pytest.raises(ValueError, match="LLM_CONCURRENCY"):
        LLMPool.from_env()
    for made in (default, custom):
        made.shutdown()


def test_the_process_has_one_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    set_llm_pool(None)
    monkeypatch.setenv("LLM_CONCURRENCY", "3")
    try:
        assert llm_pool() is llm_pool() and llm_pool().concurrency == 3
    finally:
        llm_pool().shutdown()
        set_llm_pool(None)


# ---------------------------------------------------------------- the fallback action
def test_a_question_that_gets_no_slot_gets_the_polite_human_agent_reply(
    convo: Conversation, pool: LLMPool
) -> None:
    gate = Gate()
    pool._executor.submit(gate)  # every slot busy (a slow LLM answering another shopper)
    assert gate.entered.wait(5)
    try:
        convo.user("how many days until my paypal refund arrives?", intent="nlu_fallback")
        result = convo.run(ActionFallback())
    finally:
        gate.opened.set()
    assert result.text == ERROR_REPLY
    assert "human agent" in result.text and "can't answer that right now" in result.text


def test_the_fallback_answers_through_the_pool(convo: Conversation, pool: LLMPool,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    seen: List[str] = []
    import actions.fallback as fallback

    real = fallback.grounded_reply

    def spy(question: str, tracker: object) -> str:
        seen.append(threading.current_thread().name)
        return real(question, tracker)  # type: ignore[arg-type]

    monkeypatch.setattr(fallback, "grounded_reply", spy)
    convo.user("how many days until my paypal refund arrives?", intent="nlu_fallback")
    result = convo.run(ActionFallback())
    assert "5 to 7 business days" in result.text and "human agent" in result.text
    assert len(seen) == 1 and seen[0].startswith("llm")


def test_an_order_id_in_the_fallback_never_waits_for_the_llm_pool(domain: dict,
                                                                  pool: LLMPool) -> None:
    gate = Gate()
    pool._executor.submit(gate)
    assert gate.entered.wait(5)
    try:
        convo = Conversation(domain, slots=identified_slots(MOHAMED))
        convo.user("what about W7824724", intent="nlu_fallback")
        result = convo.run(ActionFallback())
    finally:
        gate.opened.set()
    assert result.text.startswith("Order #W7824724 is processed.")
