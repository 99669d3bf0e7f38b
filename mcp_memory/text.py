"""Text handling without a model: cleaning, hashing, clause splitting, near-duplicate tests.

These rules run on every write, with or without an LLM, so they stay cheap and
predictable. They are deliberately conservative: when unsure, keep text as given.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Invisible format characters (zero-width, bidi overrides, Unicode "tag" characters used
# to smuggle hidden instructions). The zero-width joiner stays: emoji sequences need it.
_KEEP_FORMAT = {"\u200d"}


def clean(text: str) -> str:
    """Strip invisible format and control characters, normalise whitespace at the ends."""
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cf" and ch not in _KEEP_FORMAT:
            continue
        if cat == "Cc" and ch not in "\n\t":
            continue
        out.append(ch)
    return "".join(out).strip()


def had_invisible(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cf" and ch not in _KEEP_FORMAT for ch in text)


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"\s+", " ", text).strip()
    return text.rstrip(" .!?;,")


def text_hash(text: str) -> str:
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()[:32]


_WORD = re.compile(r"[\w']+", re.UNICODE)
STOPWORDS = frozenset("""
a an the and or but if then so of to in on at by for with from into about as is are was were be been being am
i i'm im me my mine we us our you your he him his she her it its they them their this that these those there
here do does did have has had having will would shall should can could may might must just also too very
really still now then than what which who whom whose when where why how all any some each every such only
own same other again further once up down out off over under more most
""".split())
_NEGATIONS = frozenset("not no never nothing nobody none neither nor don't doesn't didn't isn't aren't wasn't "
                       "weren't won't wouldn't can't cannot couldn't shouldn't hasn't haven't hadn't".split())


def content_tokens(text: str) -> set[str]:
    return {w for w in _WORD.findall(normalize(text)) if w not in STOPWORDS}


def negated(text: str) -> bool:
    words = set(_WORD.findall(normalize(text)))
    return bool(words & _NEGATIONS) or any(w.endswith("n't") for w in words)


# -- splitting text into atomic statements ------------------------------------------
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n+")
_SUBJECT = r"(?:i|i'm|i've|i'd|i'll|im|my|we|we're|our|he|he's|she|she's|they|they're|his|her|their)"
_CLAUSE = re.compile(rf",?\s+(?:but|and|although|though|while|whereas)\s+(?={_SUBJECT}\b)|;\s+", re.IGNORECASE)
_ANAPHORA = re.compile(r"\b(it|that|this|there|them|those|these|one|so|too)\b", re.IGNORECASE)


_ABBREVIATIONS = frozenset("mr mrs ms dr prof sr jr st mt vs etc e.g i.e inc ltd co corp no fig jan feb mar apr "
                           "jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun approx dept est".split())


def sentences(text: str) -> list[str]:
    """Split at sentence ends, but not after abbreviations ("Dr. Haddad") or initials ("J. Smith")."""
    out, start = [], 0
    for m in _SENTENCE.finditer(text):
        words = text[start:m.start()].split()
        last = words[-1].rstrip(".").lower() if words else ""
        if m.group().strip() == "" and (last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())):
            continue
        out.append(text[start:m.start()])
        start = m.end()
    out.append(text[start:])
    return [s.strip() for s in out if s.strip()]


def split_statements(text: str) -> list[str]:
    """Split text into sentences, and sentences into clauses that carry their own subject
    ("I love coffee but I'm allergic to soy" -> two). A clause that leans on the one
    before ("... and I loved it") stays attached."""
    out: list[str] = []
    for sentence in sentences(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        parts = [p.strip(" ,;") for p in _CLAUSE.split(sentence)]
        if len(parts) > 1 and not any(_ANAPHORA.search(p) for p in parts[1:]):
            out.extend(_finish(p) for p in parts if p)
        else:
            out.append(sentence)
    return [s for s in out if s]


def _finish(clause: str) -> str:
    clause = clause[0].upper() + clause[1:]
    return clause if clause[-1] in ".!?" else clause + "."


# -- explicit retractions ("scratch that") ---------------------------------------------
_RETRACTION = re.compile(
    r"^\s*(?:(?:actually|oh|wait|sorry|no|nope|well|ok|okay|hmm|um)[\s,!.:-]*)*"
    r"(?:scratch that|forget (?:that|what i said)|never ?mind(?: that)?|disregard that|ignore that|"
    r"correction|i meant|change of plans?)[\s,!.:;-]*",
    re.IGNORECASE,
)


def strip_retraction(text: str) -> tuple[str, bool]:
    """If ``text`` opens by taking back what was said before, return the rest and True."""
    m = _RETRACTION.match(text)
    if not m:
        return text, False
    rest = text[m.end():].strip()
    if not rest:
        return text, False
    return rest[0].upper() + rest[1:], True
