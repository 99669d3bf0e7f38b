"""Dates that text talks about, as day ranges, without a model.

`mentioned` finds explicit dates in a question or a memory ("9 November, 2022",
"March 2023", "in 2024", "2023-05-08", "in June"). `referred` also resolves the
relative expressions of a message against the day it was written ("yesterday",
"last week", "last month", "two days ago", "last Friday"), so a message written on
18 April 2023 that says "we went to a convention last month" is about March 2023.

Recall uses both to prefer the messages that are about the time a question asks about.
Deliberately plain: English, unambiguous forms only; anything unsure is left out.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
_MONTHS["sept"] = 9
_WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "a couple of": 2, "a few": 3, "few": 3, "couple of": 2}

_MON = r"(january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr" \
       r"|jun|jul|aug|sept|sep|oct|nov|dec)\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"((?:19|20)\d\d)"
_EXPLICIT = (
    ("dmy", re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MON},?\s+{_YEAR}\b", re.I)),
    ("mdy", re.compile(rf"\b{_MON}\s+{_DAY},?\s+{_YEAR}\b", re.I)),
    ("iso", re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b")),
    ("my", re.compile(rf"\b{_MON},?\s+(?:of\s+)?{_YEAR}\b", re.I)),
    ("y", re.compile(rf"\b(?:in|of|during|since|by|throughout)\s+(?:early\s+|late\s+|mid-?)?{_YEAR}\b", re.I)),
    # a month with no year ("in June"): only after a preposition, so "may" the verb never counts
    ("m", re.compile(rf"\b(?:in|during|since|early|late|mid-?|through)\s+{_MON}\b(?!\s*\d)", re.I)),
)
_COUNT = r"(\d+|a couple of|couple of|a few|few|an?|one|two|three|four|five|six|seven|eight|nine|ten)"


@dataclass(frozen=True)
class Span:
    """Days ``start``..``end`` inclusive; with ``any_year`` only month and day count."""

    start: date
    end: date
    any_year: bool = False

    def contains(self, day: date) -> bool:
        if not self.any_year:
            return self.start <= day <= self.end
        return self.start.month == day.month  # month-only spans: "in June"

    def overlaps(self, other: Span) -> bool:
        if self.any_year and other.any_year:
            return self.start.month == other.start.month
        if self.any_year or other.any_year:
            month, span = (self.start.month, other) if self.any_year else (other.start.month, self)
            if (span.end - span.start).days >= 365:
                return True
            first, last = span.start.year * 12 + span.start.month - 1, span.end.year * 12 + span.end.month - 1
            return any(m % 12 + 1 == month for m in range(first, last + 1))
        return self.start <= other.end and other.start <= self.end


def _month(year: int, month: int) -> Span:
    return Span(date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))


def _count(word: str) -> int:
    word = word.lower()
    return int(word) if word.isdigit() else _NUMBERS.get(word, 1)


def mentioned(text: str) -> list[Span]:
    """Explicit dates in ``text``, most specific form first, never two for one span of text."""
    out: list[Span] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _EXPLICIT:
        for m in pattern.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            try:
                if kind == "dmy":
                    d = date(int(m[3]), _MONTHS[m[2].lower()], int(m[1]))
                    span = Span(d, d)
                elif kind == "mdy":
                    d = date(int(m[3]), _MONTHS[m[1].lower()], int(m[2]))
                    span = Span(d, d)
                elif kind == "iso":
                    d = date(int(m[1]), int(m[2]), int(m[3]))
                    span = Span(d, d)
                elif kind == "my":
                    span = _month(int(m[2]), _MONTHS[m[1].lower()])
                elif kind == "y":
                    span = Span(date(int(m[1]), 1, 1), date(int(m[1]), 12, 31))
                else:
                    month = _MONTHS[m[1].lower()]
                    span = Span(date(2000, month, 1), date(2000, month, calendar.monthrange(2000, month)[1]),
                                any_year=True)
            except ValueError:  # 31 February and the like
                continue
            taken.append((m.start(), m.end()))
            out.append(span)
    return out


def _relative(text: str, day: date) -> list[Span]:
    out: list[Span] = []
    t = text.lower()
    if re.search(r"\b(?:yesterday|last night)\b", t):
        out.append(Span(day - timedelta(1), day - timedelta(1)))
    if re.search(r"\b(?:today|tonight|this (?:morning|afternoon|evening))\b", t):
        out.append(Span(day, day))
    if re.search(r"\b(?:last (?:week|weekend)|a week ago|the other day|this (?:week|weekend))\b", t):
        out.append(Span(day - timedelta(7), day))
    if re.search(r"\b(?:last month|a month ago)\b", t):
        prev = day.replace(day=1) - timedelta(1)
        out.append(_month(prev.year, prev.month))
    if re.search(r"\b(?:last year|a year ago)\b", t):
        out.append(Span(date(day.year - 1, 1, 1), date(day.year - 1, 12, 31)))
    for m in re.finditer(rf"\b{_COUNT}\s+(day|week|month|year)s?\s+ago\b", t):
        n, unit = _count(m[1]), m[2]
        if unit == "day":
            out.append(Span(day - timedelta(n + 1), day - timedelta(max(n - 1, 0))))
        elif unit == "week":
            out.append(Span(day - timedelta(7 * n + 3), day - timedelta(max(7 * n - 3, 0))))
        elif unit == "month":
            y, mo = divmod(day.year * 12 + day.month - 1 - n, 12)
            out.append(_month(y, mo + 1))
        else:
            out.append(Span(date(day.year - n, 1, 1), date(day.year - n, 12, 31)))
    for m in re.finditer(r"\blast (monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", t):
        back = (day.weekday() - _WEEKDAYS[m[1]]) % 7 or 7
        d = day - timedelta(back)
        out.append(Span(d, d))
    return out


def referred(text: str, written: date) -> list[Span]:
    """The days a message written on ``written`` is about: that day, the dates it names, and
    its relative expressions resolved against that day."""
    return [Span(written, written), *mentioned(text), *_relative(text, written)]


_ASKS_WHEN = re.compile(
    r"^\W*(?:\w+\W+){0,2}?(?:when\b|how long\b|since when\b|(?:in\s+)?(?:what|which)\s+"
    r"(?:year|month|day|date|week|weekend|time of year|season)\b)", re.I)
_WEEKDAY = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
# matched against lower-cased text, without re.I: four times faster (recall tests many candidates)
_SAYS_WHEN = re.compile(
    r"\b(?:yesterday|today|tonight|tomorrow|recently|lately|ago|soon|the other day|(?:this|next|last|past|coming)\s+"
    r"(?:few\s+)?(?:\w+\s+)?(?:days?|nights?|weeks?|weekends?|months?|years?|summer|winter|spring|fall|autumn|"
    rf"{_WEEKDAY})|(?:for|since|over)\s+(?:the\s+)?(?:past\s+)?"
    r"(?:\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|a few|a couple of|several|many)\s+"
    rf"(?:days?|weeks?|months?|years?)|(?:{_WEEKDAY})s?)\b")
_IN_MONTH = re.compile(dict(_EXPLICIT)["m"].pattern)  # "in June": the one explicit form without a digit
_DIGIT = re.compile(r"\d")


def asks_when(question: str) -> bool:
    """Whether ``question`` asks for a time: "When did...", "How long has...", "In which year..."."""
    return bool(_ASKS_WHEN.search(question))


def says_when(text: str) -> bool:
    """Whether ``text`` says when something happened or will: a date, or a time relative to when it
    was written ("last week", "two days ago", "next month", "for a month now", "on Friday")."""
    low = text.lower()
    return bool(_SAYS_WHEN.search(low) or _IN_MONTH.search(low) or (_DIGIT.search(text) and mentioned(text)))


def day_of(timestamp: str) -> date | None:
    """The calendar day of a stored ISO 8601 timestamp."""
    try:
        return datetime.fromisoformat(timestamp[:10]).date()
    except ValueError:
        return None
