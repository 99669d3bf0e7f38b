"""A scripted model for the mission's scenarios, playing both LLM steps of add_memory.

It reads the requests the server really sends (the extraction input, and the numbered
existing memories of the reconciliation step) and answers as a good model would.
"""

from __future__ import annotations

from typing import Any

from tests.fake_openai import existing_memories, is_extraction, new_facts

EXTRACTIONS = [
    ("trip to Tokyo", ["User is planning a trip to Tokyo"]),
    ("going to Paris instead", ["User is travelling to Paris instead of Tokyo"]),
    ("dark roast coffee but I'm allergic to soy milk",
     ["User loves drinking dark roast coffee", "User is allergic to soy milk"]),
    ("Senior Python Developer", ["User is a Senior Python Developer", "User prefers working in dark mode"]),
    ("primary stack to Rust", ["User is switching their primary stack to Rust", "User loves dark mode"]),
]


def _find(existing: dict[str, str], word: str) -> str | None:
    return next((tid for tid, text in existing.items() if word in text), None)


def scenario_model(system: str, user: str) -> dict[str, Any]:
    if is_extraction(system):
        return {"facts": [f for trigger, facts in EXTRACTIONS if trigger in user for f in facts]}
    existing, actions = existing_memories(user), []
    for fact in new_facts(user):
        if "Paris" in fact and (tid := _find(existing, "Tokyo")):
            actions.append({"event": "UPDATE", "id": tid, "text": "User is travelling to Paris (plans changed "
                            "from Tokyo)", "reason": "destination changed from Tokyo to Paris"})
        elif "Rust" in fact and (tid := _find(existing, "Python")):
            actions.append({"event": "UPDATE", "id": tid, "text": "User is a Senior Developer whose primary "
                            "stack is Rust (switched from Python)", "reason": "primary stack changed"})
        elif "dark mode" in fact and (tid := _find(existing, "dark mode")):
            actions.append({"event": "NONE", "id": tid, "reason": "already known"})
        else:
            actions.append({"event": "ADD", "text": fact, "reason": "new information"})
    return {"actions": actions}
