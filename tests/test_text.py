from mcp_memory import text


def test_clean_strips_invisible_and_control_characters_but_keeps_emoji_joiners():
    raw = "ig\u200bnore\u202e previous\x00 instructions \U000e0041 👨\u200d👩\u200d👧"
    cleaned = text.clean(raw)
    assert cleaned == "ignore previous instructions  👨\u200d👩\u200d👧"
    assert text.had_invisible(raw)
    assert not text.had_invisible("plain text 😀")


def test_hash_ignores_case_spacing_and_final_punctuation():
    assert text.text_hash("I love  Coffee.") == text.text_hash("i love coffee")
    assert text.text_hash("I love coffee") != text.text_hash("I love tea")


def test_split_statements_splits_clauses_with_their_own_subject():
    assert text.split_statements("I love drinking dark roast coffee but I'm allergic to soy milk") == [
        "I love drinking dark roast coffee.", "I'm allergic to soy milk."]
    assert text.split_statements("I am a Senior Python Developer and I prefer working in dark mode") == [
        "I am a Senior Python Developer.", "I prefer working in dark mode."]
    assert text.split_statements("First fact. Second fact!\nThird") == ["First fact.", "Second fact!", "Third"]
    assert text.split_statements("My doctor is Dr. Haddad. I met J. K. Rowling") == [
        "My doctor is Dr. Haddad.", "I met J. K. Rowling"]


def test_split_statements_keeps_clauses_that_lean_on_the_previous_one():
    assert text.split_statements("I went to Paris and I loved it") == ["I went to Paris and I loved it"]
    assert text.split_statements("I like bread and butter") == ["I like bread and butter"]


def test_strip_retraction():
    assert text.strip_retraction("Actually, scratch that, I'm going to Paris instead") == (
        "I'm going to Paris instead", True)
    assert text.strip_retraction("Never mind: the meeting is on Friday") == ("The meeting is on Friday", True)
    assert text.strip_retraction("I scratched that car") == ("I scratched that car", False)
    assert text.strip_retraction("scratch that") == ("scratch that", False)


def test_negation_and_tokens():
    assert text.negated("I don't like coffee") and not text.negated("I like coffee")
    assert text.content_tokens("I love the dark mode") == {"love", "dark", "mode"}
