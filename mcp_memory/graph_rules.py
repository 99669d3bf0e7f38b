"""Relations from plain sentences, without a model: a small set of patterns for the statements
people make most about themselves and others (where they live and work, where they travel,
what they use and like, who their family and colleagues are).

They are deliberately narrow: a pattern that fires must be right most of the time, because
a wrong relation is worse than none. An LLM (or the assistant through `add_relations`) does
the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Relations that hold for one target at a time: a new one ends the old one (Tokyo -> Paris).
FUNCTIONAL = frozenset({
    "lives_in", "works_at", "travels_to", "primary_stack", "primary_language", "job_title", "married_to",
    "located_in", "current_project", "orchestrates_with", "based_in",
})

USER_NAMES = frozenset({"i", "me", "myself", "user", "the user"})


@dataclass(frozen=True)
class Triple:
    source: str
    relation: str
    target: str
    source_type: str | None = None
    target_type: str | None = None
    exclusive: bool = False


_PROPER = r"(?P<{g}>(?:[A-Z][\w&.'-]*|[0-9][\w-]*)(?:\s+(?:(?:of|de|la|del|van|von|the|and|&)\s+)?[A-Z][\w&.'-]*)*)"
_NP = r"(?P<{g}>[\w][\w' +#.-]{{0,40}}?)(?=\s*(?:[.,;!?]|\band\b|\bbut\b|\bbecause\b|\bsince\b|\bwhen\b|$))"
_NOT_NAMES = ("Actually|Also|And|But|So|Then|Now|Today|Yesterday|Tomorrow|Well|Oh|Yes|No|Maybe|Name|Note|The|This|"
              "That|We|They|He|She|It|You|Our|Their|His|Her|Last|Next|Every|After|Before|When|If|Since|Because")
_SUBJECT = rf"(?P<s>\bI\b|I'm|I am|I've|User|The user|My \w+|\b(?!(?:{_NOT_NAMES})\b)[A-Z][a-z]+(?: [A-Z][a-z]+)?)"
_FAMILY = ("sister|brother|wife|husband|partner|girlfriend|boyfriend|friend|colleague|boss|manager|mother|father|mom|"
           "dad|son|daughter|cousin|aunt|uncle|neighbour|neighbor|roommate|dog|cat|doctor|dentist|teacher")


def _p(template: str, **groups: str) -> re.Pattern[str]:
    for name, kind in groups.items():
        template = template.replace("{" + name + "}", (_PROPER if kind == "proper" else _NP).format(g=name))
    return re.compile(template)


_RULES: list[tuple[re.Pattern[str], str, str | None]] = [
    (_p(_SUBJECT + r"(?:'s| is| are| am)? (?:now )?(?:living|live|lives|based) in {o}", o="proper"), "lives_in", "place"),
    (_p(_SUBJECT + r"(?: has| have|'ve|'s)? (?:just )?(?:moved|moving|relocated|relocating) to {o}", o="proper"),
     "lives_in", "place"),
    (_p(_SUBJECT + r"(?: is| am|'m)? (?:now )?(?:working|work|works|employed) (?:at|for) {o}", o="proper"),
     "works_at", "organisation"),
    (_p(_SUBJECT + r".{0,40}?\b(?:trip|travel(?:l?ing)?|going|flying|heading|vacation|holiday) to {o}", o="proper"),
     "travels_to", "place"),
    (_p(_SUBJECT + r".{0,30}?\bprimary (?:stack|language)(?: is| to)? {o}", o="proper"), "primary_stack", "technology"),
    (_p(_SUBJECT + r".{0,20}?\b(?:switch(?:ing|ed)?|moving|migrating|migrated) (?:my )?(?:primary )?(?:stack |language )"
                   r"to {o}", o="proper"), "primary_stack", "technology"),
    (_p(_SUBJECT + r".{0,20}?\b(?:prefer|prefers|use|uses|using) {o} for orchestration", o="proper"),
     "orchestrates_with", "technology"),
    (_p(_SUBJECT + r".{0,20}?\bmigrat\w* (?:from \w[\w ]*? )?to {o}", o="proper"), "orchestrates_with", "technology"),
    (_p(_SUBJECT + r"(?:'s| is| am) (?:allergic|intolerant) to {o}", o="np"), "allergic_to", "thing"),
    (_p(_SUBJECT + r" (?:really |also |still )?(?:love|loves|like|likes|enjoy|enjoys|prefer|prefers) {o}", o="np"),
     "likes", "thing"),
]
_FAMILY_RE = re.compile(rf"\b(?P<owner>[Mm]y|[A-Z][a-z]+'s) (?P<rel>{_FAMILY}) (?:is )?(?:called |named )?"
                        r"(?P<o>[A-Z][a-z]+(?: [A-Z][a-z]+)?)")


def _subject(raw: str) -> str:
    low = raw.lower()
    if low in {"i", "i'm", "i am", "i've", "user", "the user"}:
        return "User"
    if low.startswith("my "):
        return "User's " + raw[3:]
    return raw


def extract(text: str) -> list[Triple]:
    """Relations stated by ``text``, one sentence at a time."""
    out: list[Triple] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        for m in _FAMILY_RE.finditer(sentence):
            owner = "User" if m.group("owner").lower() == "my" else m.group("owner")[:-2]
            out.append(Triple(owner, f"{m.group('rel').lower()}", m.group("o"), "person", None))
        for pattern, relation, target_type in _RULES:
            m = pattern.search(sentence)
            if not m:
                continue
            target = m.group("o").strip(" .,'")
            if not target or target.lower() in USER_NAMES or len(target) > 60:
                continue
            if relation == "likes" and target.split()[0].lower() in {"to", "that", "it", "this", "when", "how"}:
                continue
            out.append(Triple(_subject(m.group("s")), relation, target, "person", target_type,
                              relation in FUNCTIONAL))
    return list(dict.fromkeys(out))
