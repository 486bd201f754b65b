"""What every action is made of: the SDK's argument types, its name, and polite failure.

Kept in one place so that no action can show a traceback to the shopper.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from abc import ABCMeta, abstractmethod
from typing import Any, Awaitable, Callable, ClassVar, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.shop_client import ShopError, ShopUnavailable

logger = logging.getLogger(__name__)

DomainDict = Dict[str, Any]
Events = List[Dict[str, Any]]
Dispatcher = CollectingDispatcher
RunFn = Callable[[Action, Dispatcher, Tracker, DomainDict], Awaitable[Events]]


class NamedAction(Action, metaclass=ABCMeta):
    """An action whose name is the class attribute ``action_name`` (as in domain.yml).

    Abstract, so that the SDK registers only the concrete actions.
    """

    action_name: ClassVar[str] = ""

    def name(self) -> str:
        return self.action_name

    @abstractmethod
    async def run(self, dispatcher: Dispatcher, tracker: Tracker,
                  domain: DomainDict) -> Events:
        """The action's turn (the SDK's signature)."""


async def run_safely(name: str, call: Callable[[], Awaitable[Events]],
                     dispatcher: Dispatcher) -> Events:
    """Run ``call`` off the event loop; shop trouble becomes a polite reply, never a traceback.

    The shop client is blocking (requests), so the action body runs in a worker thread with its
    own event loop: a slow shop then delays one conversation, not the whole action server.
    """
    try:
        return await asyncio.to_thread(lambda: asyncio.run(call()))
    except ShopUnavailable as exc:
        logger.warning("%s: shop unavailable: %s", name, exc)
        dispatcher.utter_message(response="utter_shop_unavailable")
    except ShopError as exc:  # an unexpected 4xx: a bug on one side, not the shopper's fault
        logger.error("%s: unexpected shop answer %s: %s", name, exc.status, exc)
        dispatcher.utter_message(response="utter_shop_unavailable")
    except Exception:  # noqa: BLE001 - the shopper must never see a stack trace
        logger.exception("%s failed", name)
        dispatcher.utter_message(response="utter_internal_error")
    return []


def shop_safe(run: RunFn) -> RunFn:
    """Decorate an action's ``run`` with :func:`run_safely`."""

    @functools.wraps(run)
    async def wrapper(self: Action, dispatcher: Dispatcher, tracker: Tracker,
                      domain: DomainDict) -> Events:
        return await run_safely(self.name(), lambda: run(self, dispatcher, tracker, domain),
                                dispatcher)

    return wrapper
