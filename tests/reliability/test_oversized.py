"""100 KB messages through the REST channel: answered in bounded time without stalling others.

Known bug (reported): Rasa has no message length limit, and regexes with unbounded repeats on
one long token are quadratic (NLU regex feature `email` in data/nlu/regex.yml, and EMAIL_RE in
actions/identity.py, `_EMAIL` in actions/llm.py): 10 KB without spaces takes ~1 s to parse,
30 KB ~11 s, 100 KB minutes, during which Rasa's event loop answers nobody. This module runs
last (conftest) because the stalled server keeps working after the client gave up.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.reliability.conftest import Reliability, known_bug, record

HUNDRED_KB = {"one_token": "x" * 100_000, "emoji_run": "🙂" * 25_000,
              "email_like": "a" * 99_990 + "@example"}
BOUND = 60.0


@known_bug("no message length limit: a 100 KB message without spaces stalls the whole Rasa "
           "server for minutes (quadratic regexes); suggested fix: truncate or refuse messages "
           "over a few KB in the REST/socket.io channels, bound the email regexes")
def test_100kb_messages_answered_without_stalling_others(rel: Reliability) -> None:
    url = f"{rel.stack.rasa_url}/webhooks/rest/webhook"
    stop = threading.Event()
    others: list[float] = []

    def bystander() -> None:
        while not stop.is_set():
            started = time.monotonic()
            with contextlib.suppress(requests.RequestException):
                requests.post(url, json={"sender": "bystander", "message": "hello"},
                              timeout=BOUND)
            others.append(time.monotonic() - started)
            stop.wait(2)

    def send(item: tuple[str, str]) -> tuple[str, float, int | None]:
        started = time.monotonic()
        try:
            response = requests.post(url, json={"sender": f"big-{item[0]}", "message": item[1]},
                                     timeout=BOUND)
            ok = response.status_code if isinstance(response.json(), list) else None
        except (requests.RequestException, ValueError):
            ok = None
        return item[0], time.monotonic() - started, ok

    watcher = threading.Thread(target=bystander, daemon=True)
    watcher.start()
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(send, HUNDRED_KB.items()))
    stop.set()
    watcher.join(BOUND + 5)
    record("oversized", results=results, bystander_max=round(max(others), 1))
    assert all(status == 200 for _n, _s, status in results), results
    assert max(others) < 10, f"other conversations waited {max(others):.0f} s"
