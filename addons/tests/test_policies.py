"""SentimentEscalationPolicy on real Rasa trackers, and inside a trained assistant."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from rasa.core.agent import Agent
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.model_training import train
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    Event,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from addons.policies import SentimentEscalationPolicy

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [greet, complain, request_human, deny, order_status]
actions: [action_offer_human, action_handoff, action_order_status]
forms:
  some_form:
    required_slots: []
""")
POLICY = "SentimentEscalationPolicy"
ANGRY = {"label": "negative", "compound": -0.8, "strongly_negative": True}
ANNOYED = {"label": "negative", "compound": -0.4, "strongly_negative": False}
CALM = {"label": "neutral", "compound": 0.0, "strongly_negative": False}


def make(tmp_path: Path, **config: Any) -> SentimentEscalationPolicy:
    return SentimentEscalationPolicy.create(
        {**SentimentEscalationPolicy.get_default_config(), **config},
        LocalModelStorage(tmp_path), Resource("escalation"),
        ExecutionContext(GraphSchema({}), node_name="escalation"),
    )


def user(text: str, sentiment: Optional[Dict[str, Any]], intent: str = "complain") -> List[Event]:
    parse_data: Dict[str, Any] = {"intent": {"name": intent, "confidence": 1.0},
                                  "entities": [], "text": text}
    if sentiment is not None:
        parse_data["sentiment"] = sentiment
    return [ActionExecuted(ACTION_LISTEN_NAME),
            UserUttered(text, parse_data["intent"], [], parse_data)]


def bot(name: str, policy: Optional[str] = "RulePolicy") -> List[Event]:
    return [ActionExecuted(name, policy=policy, confidence=1.0)]


def tracker(*turns: List[Event]) -> DialogueStateTracker:
    events: List[Event] = [ActionExecuted("action_session_start"), SessionStarted()]
    for turn in turns:
        events += turn
    return DialogueStateTracker.from_events("shopper", events, slots=DOMAIN.slots)


def predicted(policy: SentimentEscalationPolicy, t: DialogueStateTracker) -> Optional[str]:
    prediction = policy.predict_action_probabilities(t, DOMAIN)
    assert len(prediction.probabilities) == DOMAIN.num_actions
    if max(prediction.probabilities) == 0.0:
        return None
    assert max(prediction.probabilities) == 1.0 and sum(prediction.probabilities) == 1.0
    assert prediction.policy_name == POLICY and prediction.policy_priority == 5
    return DOMAIN.action_names_or_texts[prediction.max_confidence_index]


@pytest.fixture
def policy(tmp_path: Path) -> SentimentEscalationPolicy:
    return make(tmp_path)


def test_two_strongly_negative_messages_in_a_row_offer_a_human(policy) -> None:
    t = tracker(user("this is terrible", ANGRY), bot("action_order_status"),
                user("I hate this, worst shop ever", ANGRY))
    assert predicted(policy, t) == "action_offer_human"


def test_slot_events_after_the_message_do_not_matter(policy) -> None:
    t = tracker(user("awful", ANGRY), bot("utter_x"), user("horrible", ANGRY),
                [SlotSet("sentiment", "negative")])
    assert predicted(policy, t) == "action_offer_human"


@pytest.mark.parametrize("turns", [
    [user("awful", ANGRY)],                                                  # only one
    [user("awful", ANGRY), bot("utter_x"), user("hm, ok", CALM)],             # calm now
    [user("awful", ANGRY), bot("utter_x"), user("a bit annoying", ANNOYED)],  # not strong
    [user("awful", ANGRY), bot("utter_x"), user("ok", CALM), bot("utter_x"),
     user("awful", ANGRY)],                                                   # not in a row
    [user("awful", None), bot("utter_x"), user("awful", None)],               # no sentiment
    [],                                                                       # no message
])
def test_abstains_otherwise(policy, turns: List[List[Event]]) -> None:
    assert predicted(policy, tracker(*turns)) is None


def test_not_in_the_middle_of_the_bot_turn(policy) -> None:
    t = tracker(user("awful", ANGRY), bot("utter_x"), user("horrible", ANGRY),
                bot("utter_sorry"))
    assert predicted(policy, t) is None


def test_listens_after_its_own_offer_then_does_not_repeat_it(policy) -> None:
    offer = bot("action_offer_human", policy=POLICY) + [SlotSet("human_offered", True)]
    t = tracker(user("awful", ANGRY), bot("utter_x"), user("horrible", ANGRY), offer)
    assert predicted(policy, t) == ACTION_LISTEN_NAME
    t = tracker(user("awful", ANGRY), bot("utter_x"), user("horrible", ANGRY), offer,
                user("no! you are useless", ANGRY, intent="deny"))
    assert predicted(policy, t) is None  # same streak: offered already
    t = tracker(user("awful", ANGRY), bot("utter_x"), user("horrible", ANGRY), offer,
                user("no! useless", ANGRY, intent="deny"), bot("utter_x"),
                user("ok fine", CALM), bot("utter_x"),
                user("still broken, awful", ANGRY), bot("utter_x"),
                user("terrible!!", ANGRY))
    assert predicted(policy, t) == "action_offer_human"  # a new streak


def test_offer_predicted_by_another_policy_is_not_followed_by_listen(policy) -> None:
    t = tracker(user("awful", ANGRY), bot("action_offer_human", policy="RulePolicy"))
    assert predicted(policy, t) is None


def test_no_offer_after_a_handoff_in_the_streak(policy) -> None:
    t = tracker(user("awful", ANGRY), bot("action_handoff"), user("horrible", ANGRY))
    assert predicted(policy, t) is None


def test_explicit_request_is_left_to_the_rules(policy) -> None:
    t = tracker(user("awful", ANGRY), bot("utter_x"),
                user("get me a human, now!! terrible", ANGRY, intent="request_human"))
    assert predicted(policy, t) is None


def test_streak_does_not_cross_sessions(policy) -> None:
    t = tracker(user("awful", ANGRY), bot("utter_x"),
                [ActionExecuted("action_session_start"), SessionStarted()],
                user("horrible", ANGRY))
    assert predicted(policy, t) is None


def test_reverted_messages_do_not_count(policy) -> None:
    t = tracker(user("awful", ANGRY), bot("utter_x"), user("typo", CALM),
                [UserUtteranceReverted()], user("horrible", ANGRY))
    assert predicted(policy, t) == "action_offer_human"


def test_messages_answered_inside_a_form_count(policy) -> None:
    t = tracker(user("status", CALM, intent="order_status"),
                bot("some_form") + [ActiveLoop("some_form")],
                user("awful", ANGRY), bot("some_form"),
                user("horrible", ANGRY))
    assert predicted(policy, t) == "action_offer_human"


def test_configuration(tmp_path: Path) -> None:
    three = make(tmp_path, consecutive=3)
    two_angry = tracker(user("awful", ANGRY), bot("utter_x"), user("horrible", ANGRY))
    assert predicted(three, two_angry) is None
    no_forms = make(tmp_path, during_active_loop=False)
    in_form = tracker(user("awful", ANGRY), bot("some_form") + [ActiveLoop("some_form")],
                      user("horrible", ANGRY))
    assert predicted(no_forms, in_form) is None
    by_score = tracker(user("awful", {"compound": -0.7}), bot("utter_x"),
                       user("bad", {"compound": -0.6}))
    assert predicted(make(tmp_path), by_score) == "action_offer_human"
    assert predicted(make(tmp_path, strong_negative_threshold=-0.65), by_score) is None
    unknown = make(tmp_path, action="action_not_in_domain")
    assert predicted(unknown, two_angry) is None


# ------------------------------------------------------------------ inside a trained assistant

CONFIG = """\
recipe: default.v1
language: en
assistant_id: escalation-test
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: LogisticRegressionClassifier
  - name: addons.sentiment.SentimentAnalyzer
policies:
  - name: RulePolicy
  - name: addons.policies.SentimentEscalationPolicy
    # a response instead of the custom action, so no action server is needed here
    action: utter_offer_human
"""

DOMAIN_YML = """\
version: "3.1"
intents: [complain, request_human]
entities:
  - sentiment:
      influence_conversation: false
slots:
  sentiment:
    type: categorical
    values: [negative, neutral, positive]
    influence_conversation: false
    mappings:
      - type: from_entity
        entity: sentiment
responses:
  utter_reply:
    - text: "Happy to help with that!"
    - condition:
        - type: slot
          name: sentiment
          value: negative
      text: "I'm sorry about this. Let me look into it."
  utter_offer_human:
    - text: "Would you like me to connect you with a human agent?"
  utter_human:
    - text: "Connecting you."
"""

DATA = """\
version: "3.1"
nlu:
- intent: complain
  examples: |
    - my order is late
    - where is my parcel
    - my package has not arrived
    - the item is broken
- intent: request_human
  examples: |
    - human please
    - talk to an agent
    - real person
rules:
- rule: answer
  steps:
  - intent: complain
  - action: utter_reply
- rule: human
  steps:
  - intent: request_human
  - action: utter_human
"""


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Agent:
    root = tmp_path_factory.mktemp("escalation-model")
    for name, text in (("config.yml", CONFIG), ("domain.yml", DOMAIN_YML), ("data.yml", DATA)):
        (root / name).write_text(text)
    result = train(str(root / "domain.yml"), str(root / "config.yml"), [str(root / "data.yml")],
                   str(root / "models"), fixed_model_name="escalation")
    assert result.code == 0 and result.model
    return Agent.load(result.model)


def say(agent: Agent, text: str) -> List[str]:
    return [m.get("text") for m in asyncio.run(agent.handle_text(text, sender_id="upset"))]


def test_trained_assistant_acknowledges_then_offers_a_human_once(agent: Agent) -> None:
    assert say(agent, "where is my parcel") == ["Happy to help with that!"]
    # strongly negative: the acknowledging variant, never the cheerful one
    assert say(agent, "my order is late and I am furious, worst shop ever") == [
        "I'm sorry about this. Let me look into it."]
    # the second in a row: the offer (and the bot waits for the answer)
    assert say(agent, "my package is late again, I hate this, terrible!") == [
        "Would you like me to connect you with a human agent?"]
    # still angry: no second offer for the same streak
    assert say(agent, "this is awful, my item is broken, horrible service") == [
        "I'm sorry about this. Let me look into it."]

    tracker = asyncio.run(agent.tracker_store.retrieve("upset"))
    assert tracker.get_slot("sentiment") == "negative"
    assert tracker.latest_message.parse_data["sentiment"]["strongly_negative"] is True
    offers = [e for e in tracker.events
              if isinstance(e, ActionExecuted) and e.action_name == "utter_offer_human"]
    assert len(offers) == 1 and offers[0].policy == POLICY
