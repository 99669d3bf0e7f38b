"""How recall ranks the message log: neighbouring turns, the session a turn belongs to, the
speaker and the date a question names, message vectors, and stores made before migration 0003."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from mcp_memory import dates
from mcp_memory.recall_rank import name_candidates
from mcp_memory.service import MemoryService
from mcp_memory.store import messages as msgsql
from mcp_memory.store.schema import migrations
from mcp_memory.text import asks


def log(service: MemoryService, run_id: str, day: str, turns: list[tuple[str, str]], user_id: str = "u") -> None:
    service.agent.log_messages([{"role": "user", "name": who, "content": text, "created_at": f"{day}T10:00:{i:02d}Z"}
                                for i, (who, text) in enumerate(turns)], run_id=run_id, user_id=user_id)


def contents(service: MemoryService, query: str, **kw: Any) -> list[str]:
    return [m.content for m in service.agent.recall(query, user_id=kw.pop("user_id", "u"), **kw).messages]


def test_the_answer_in_a_neighbouring_turn_is_found(service: MemoryService):
    log(service, "s1", "2024-03-02", [
        ("Alice", "I finally picked up a new hobby last month."),
        ("Bob", "Oh nice, which hobby did you pick?"),
        ("Alice", "Pottery! I made a lopsided bowl."),
        ("Bob", "Ha, the first one always is."),
    ])
    log(service, "s2", "2024-03-09", [
        ("Bob", "My brother collects stamps."),
        ("Alice", "The weather was awful all week."),
        ("Bob", "Did the rain stop your walk?"),
    ])
    found = contents(service, "What hobby did Alice pick up?")
    # "Pottery!" shares no word with the question: it comes in as the reply to the turn that does,
    # ahead of everything else Alice said
    assert set(found[:3]) == {"I finally picked up a new hobby last month.", "Oh nice, which hobby did you pick?",
                              "Pottery! I made a lopsided bowl."}
    assert found.index("Pottery! I made a lopsided bowl.") < found.index("The weather was awful all week.")
    # a run filter keeps results (and their context) inside the run
    assert contents(service, "hobby", run_id="s2") == []


def test_an_exchange_that_keeps_to_the_subject_outranks_a_single_match(service: MemoryService):
    log(service, "s1", "2024-04-02", [
        ("Bob", "So which new bike did you pick?"),
        ("Alice", "Yes! The red one with the basket."),
        ("Bob", "That bike will be perfect for the canal path."),
    ])
    log(service, "s2", "2024-04-09", [
        ("Bob", "I saw a bike today."),
        ("Alice", "No idea, honestly."),
        ("Bob", "The weather was grey all day."),
    ])
    found = contents(service, "Which bike did Alice buy?")
    # neither of Alice's replies shares a word with the question; the one whose exchange matches
    # before and after it comes first, ahead of the one next to a single (shorter, stronger) match
    assert found[0] == "Yes! The red one with the basket."
    assert found.index("Yes! The red one with the basket.") < found.index("No idea, honestly.")


def test_the_answer_comes_before_the_question_that_repeats_the_words(service: MemoryService):
    log(service, "s1", "2024-04-02", [
        ("Alice", "Have you tried the pottery class?"),
        ("Bob", "I joined the pottery class in March and go every Tuesday evening."),
    ])
    # the shorter question matches more strongly word for word, but it only asks
    assert contents(service, "Who goes to the pottery class?")[0].startswith("I joined the pottery class")
    assert asks("Have you tried the pottery class?") and asks("Congrats! How long have you been married?")
    assert not asks("Wow, love that painting! So cool you found a group. What's it done for you?")
    assert not asks("I wonder why. Dr. Smith knows.")


def test_a_turn_in_the_conversation_about_the_subject_outranks_a_passing_mention(service: MemoryService):
    log(service, "s1", "2024-04-06", [
        ("Alice", "I spent the whole weekend planting the vegetable garden."),
        ("Bob", "How did the weather hold up?"),
        ("Alice", "Sunny both days, lovely."),
        ("Bob", "Did the dog behave?"),
        ("Alice", "He slept in the shade all afternoon."),
        ("Bob", "Good boy."),
        ("Alice", "Tomatoes went in last, right by the garden gate."),
    ])
    log(service, "s2", "2024-04-13", [
        ("Alice", "Traffic was terrible this morning."),
        ("Bob", "Roadworks again?"),
        ("Alice", "Yes, near the garden centre."),
        ("Bob", "They never finish."),
    ])
    found = contents(service, "What did Alice plant in her garden?")
    # both turns say "garden" once, too far from the planting turn to be its neighbours; the one
    # in the conversation about planting the garden comes first, although the other is shorter
    assert found.index("Tomatoes went in last, right by the garden gate.") < found.index(
        "Yes, near the garden centre.")


def test_the_speaker_named_in_the_question_comes_first(service: MemoryService):
    log(service, "s1", "2024-05-01", [
        ("Alice", "I sold my old guitar to a collector."),
        ("Bob", "I play guitar every evening after work."),
    ])
    assert contents(service, "Does Bob play the guitar?")[0] == "I play guitar every evening after work."
    assert contents(service, "What did Alice do with the guitar?")[0] == "I sold my old guitar to a collector."
    assert contents(service, "what did alice's guitar become")[0] == "I sold my old guitar to a collector."


def test_the_date_named_in_the_question_comes_first(service: MemoryService):
    log(service, "march", "2024-03-02", [("Alice", "We went hiking on Mount Tam, lovely views.")])
    log(service, "june", "2024-06-15", [("Alice", "We went hiking on Mount Diablo, it was hot.")])
    log(service, "july", "2024-07-02", [("Alice", "Yesterday we went hiking on Mount Wilson.")])
    june = contents(service, "Where did Alice go hiking in June 2024?")
    assert june[0] == "We went hiking on Mount Diablo, it was hot."
    assert contents(service, "Where did we go hiking in March 2024?")[0] == "We went hiking on Mount Tam, lovely views."
    # "yesterday", written on 2 July, is about 1 July
    assert contents(service, "Where did we hike on 1 July, 2024?")[0] == "Yesterday we went hiking on Mount Wilson."
    # a date alone finds that day's messages first, through the date words in the index
    assert contents(service, "15 June 2024")[0] == "We went hiking on Mount Diablo, it was hot."
    # the filters still bound the results
    assert contents(service, "hiking", end_date="2024-03-31") == ["We went hiking on Mount Tam, lovely views."]


def test_a_when_question_prefers_the_turn_that_says_when(service: MemoryService):
    log(service, "s1", "2024-05-10", [("Alice", "I joined the pottery class and I love the pottery class so much.")])
    log(service, "s2", "2024-06-20", [("Bob", "The weather has been lovely."),
                                      ("Alice", "I joined the pottery class last week."), ("Bob", "Nice, enjoy it.")])
    question = "When did Alice join the pottery class?"
    assert contents(service, question)[:2] == ["I joined the pottery class last week.",
                                              "I joined the pottery class and I love the pottery class so much."]
    # asked another way, the turn that repeats the words more comes first
    assert contents(service, "Did Alice join the pottery class?")[0] == (
        "I joined the pottery class and I love the pottery class so much.")
    assert dates.asks_when(question) and dates.asks_when("How long has Bob played chess?")
    assert not dates.asks_when("What does Alice do when she is stressed?")
    assert dates.says_when("Been playing it for a month now") and dates.says_when("Let's do it next month")
    assert dates.says_when("We met on 8 May, 2023") and not dates.says_when("I may go there with my dogs")


def test_messages_get_vectors_and_rank_before_they_have_them(service: MemoryService):
    log(service, "s1", "2024-01-05", [("Ann", "My cat Miso knocked the plant over."),
                                      ("Ben", "Cats do love knocking things off tables.")])
    conn = service.sql.conn
    before = contents(service, "cat knocked plant")  # vectors computed on the fly, not stored
    assert before[0] == "My cat Miso knocked the plant over."
    service.sync.embed_messages()
    blobs = [r[0] for r in conn.execute("SELECT vector FROM messages ORDER BY id")]
    assert all(b is not None and len(b) == service.embedder.dim * 2 for b in blobs)  # float16
    assert contents(service, "cat knocked plant") == before
    assert service.sync.embed_messages() == 0  # nothing left to do


def test_reindex_re_embeds_the_log(make_service: Any):
    svc = make_service()
    log(svc, "s1", "2024-01-05", [("Ann", "Dentist appointment moved to Thursday.")])
    svc.sync.embed_messages()
    svc.sql.conn.execute("UPDATE messages SET vector = x'00'")  # e.g. vectors of another embedder
    svc.close()
    fresh = make_service()
    fresh.reindex()
    fresh.open()
    blob = fresh.sql.conn.execute("SELECT vector FROM messages").fetchone()[0]
    assert len(blob) == fresh.embedder.dim * 2
    assert contents(fresh, "when is the dentist")[0] == "Dentist appointment moved to Thursday."


def test_a_store_from_before_migration_0003_is_upgraded(data_dir: Path, make_service: Any):
    data_dir.mkdir(parents=True)
    db = Database(data_dir / "memory.sqlite3")
    migrations.apply(db, stop_before="0003_recall_ranking")
    db.execute("INSERT INTO messages (role, name, content, created_at, user_id, run_id) VALUES "
               "('user', 'Kim', 'The plumber comes on Tuesday', '2024-02-01T09:00:00Z', 'default', 'r1')")
    db.conn.commit()
    db.close()
    svc = make_service()
    assert contents(svc, "when does the plumber come", user_id="default") == ["The plumber comes on Tuesday"]
    assert contents(svc, "Kim", user_id="default") == ["The plumber comes on Tuesday"]  # by the speaker named
    conn = sqlite3.connect(data_dir / "memory.sqlite3")
    conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
    conn.close()


def test_full_text_index_follows_edits_and_deletes(service: MemoryService):
    log(service, "s1", "2024-01-05", [("Ann", "zebra crossing near the school")])
    conn = service.sql.conn
    conn.execute("UPDATE messages SET content = 'giraffe crossing near the school'")
    conn.execute("UPDATE messages SET vector = NULL")  # vector updates do not touch the index
    assert contents(service, "zebra") == [] and contents(service, "giraffe") == ["giraffe crossing near the school"]
    conn.execute("DELETE FROM messages")
    assert contents(service, "giraffe") == []
    conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")


def test_dates_mentioned_and_referred():
    assert dates.mentioned("What did Nate make on 9 November, 2022?") == [
        dates.Span(date(2022, 11, 9), date(2022, 11, 9))]
    assert dates.mentioned("on May 8th, 2023 and in March 2023") == [
        dates.Span(date(2023, 5, 8), date(2023, 5, 8)), dates.Span(date(2023, 3, 1), date(2023, 3, 31))]
    assert dates.mentioned("I may go there") == []  # the verb, not the month
    june = dates.mentioned("camping in June")[0]
    assert june.any_year and june.contains(date(2019, 6, 30)) and not june.contains(date(2019, 7, 1))
    told = dates.referred("We went to a convention last month", date(2023, 4, 18))
    assert dates.Span(date(2023, 3, 1), date(2023, 3, 31)) in told
    assert dates.Span(date(2023, 4, 14), date(2023, 4, 14)) in dates.referred("last Friday", date(2023, 4, 18))
    # no such day: the month is what is left
    assert dates.mentioned("31 February 2023") == [dates.Span(date(2023, 2, 1), date(2023, 2, 28))]


def test_name_candidates():
    assert "Caroline" in name_candidates("What is Caroline's identity?")
    assert "Mary Jane" in name_candidates("Where did Mary Jane go?")
    assert msgsql.date_words("2023-05-08T13:56:00Z") == "8 May 2023"
