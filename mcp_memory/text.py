"""Text handling without a model: cleaning, hashing, clause splitting, near-duplicate tests.

These rules run on every write, with or without an LLM, so they stay cheap and
predictable. They are deliberately conservative: when unsure, keep text as given.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=1024)
def content_tokens(text: str) -> frozenset[str]:
    """The words of a text that carry content (no stopwords), normalised. Cached: the add path
    compares each candidate's words several times (a few hundred bytes an entry for
    a typical fact)."""
    return frozenset(w for w in _WORD.findall(normalize(text)) if w not in STOPWORDS)


@functools.lru_cache(maxsize=1024)
def content_stems(text: str) -> frozenset[str]:
    """`stem` of each of `content_tokens`."""
    return frozenset(stem(t) for t in content_tokens(text))


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English suffix stripper (keys -> key, stored -> stor, studies -> study)."""
    w = word.removesuffix("'s")
    for suffix, repl, min_len in (("ies", "y", 5), ("ing", "", 6), ("ed", "", 5), ("es", "", 5), ("s", "", 4)):
        if w.endswith(suffix) and len(w) >= min_len and not w.endswith("ss"):
            return w[: -len(suffix)] + repl
    return w


def negated(text: str) -> bool:
    words = set(_WORD.findall(normalize(text)))
    return bool(words & _NEGATIONS) or any(w.endswith("n't") for w in words)


def fts_query(query: str) -> str | None:
    """An FTS5 query for free text: content words (all words if only stopwords), each quoted,
    OR-ed, so punctuation and FTS operators in the input can never break the query."""
    words = _WORD.findall(normalize(query))
    terms = [w for w in words if w not in STOPWORDS] or words
    terms = list(dict.fromkeys(t.replace('"', "") for t in terms if t.strip("'")))
    return " OR ".join(f'"{t}"' for t in terms) or None


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


def asks(text: str) -> bool:
    """Whether a message mostly asks: at least half its sentences are questions (split at every
    sentence end, abbreviations included: ~2 us, as recall tests each candidate)."""
    if "?" not in text:
        return False
    parts = [p.strip() for p in _SENTENCE.split(text) if p.strip()]
    return 2 * sum(p.endswith("?") for p in parts) >= len(parts)


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


# -- chunking long documents for archival memory ----------------------------------------
_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")


def chunk_document(text: str, max_chars: int = 1500) -> list[str]:
    """Split a document into passages of at most ``max_chars``: by markdown section, then by
    paragraph, then by sentence, never mid-word. Each passage of a sectioned document starts
    with its heading path ("Guide > Setup > Linux") so it is understandable on its own."""
    sections: list[tuple[str, list[str]]] = []
    path: list[tuple[int, str]] = []
    current: list[str] = []
    for line in text.splitlines():
        m = _HEADING.match(line)
        if m:
            if any(p.strip() for p in current):
                sections.append((" > ".join(t for _, t in path), current))
            level = len(m.group(1))
            path = [(lv, t) for lv, t in path if lv < level] + [(level, m.group(2))]
            current = []
        else:
            current.append(line)
    if any(p.strip() for p in current) or not sections:
        sections.append((" > ".join(t for _, t in path), current))

    chunks: list[str] = []
    for heading, lines in sections:
        prefix = f"{heading}\n" if heading else ""
        budget = max(max_chars - len(prefix), max_chars // 2)
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", "\n".join(lines)) if p.strip()]
        pieces: list[str] = []
        for p in paragraphs:
            pieces.extend([p] if len(p) <= budget else _split_long(p, budget))
        buf = ""
        for piece in pieces:
            if buf and len(buf) + 2 + len(piece) > budget:
                chunks.append(prefix + buf)
                buf = piece
            else:
                buf = f"{buf}\n\n{piece}" if buf else piece
        if buf:
            chunks.append(prefix + buf)
    return chunks


def _split_long(paragraph: str, budget: int) -> list[str]:
    out, buf = [], ""
    for sentence in sentences(paragraph) or [paragraph]:
        while len(sentence) > budget:  # a sentence longer than a chunk: cut at the last space
            cut = sentence.rfind(" ", 0, budget)
            cut = cut if cut > budget // 2 else budget
            if buf:
                out.append(buf)
                buf = ""
            out.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if buf and len(buf) + 1 + len(sentence) > budget:
            out.append(buf)
            buf = sentence
        else:
            buf = f"{buf} {sentence}" if buf else sentence
    if buf:
        out.append(buf)
    return out
