"""Realistic, varied short memories and questions for the speed benchmarks.

Two sources, mixed so no size is dominated by one style:
- real conversation turns from LoCoMo (../shared/data/locomo-dev.json, 2,760 turns), used as
  they are first, then varied (speaker names swapped, a session date and speaker prefixed)
  to reach larger sizes;
- personal facts from ~40 templates over word lists (people, relations, places, foods,
  jobs, dates ...), the kind of statement an assistant stores about its user.
Queries are the LoCoMo questions (names swapped the same way) and template questions that
ask for the templated facts. Everything is deterministic for a seed; texts are unique
after the normalisation the store uses for duplicate detection.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path

LOCOMO = Path(os.environ.get("LOCOMO_PATH", Path(__file__).resolve().parents[2] / "shared" / "data" /
                             "locomo-dev.json"))
if not LOCOMO.exists():
    LOCOMO = Path("/work/shared/data/locomo-dev.json")

NAMES = """Anna Ben Carla David Elena Farid Grace Hiro Isabel Jonas Kemal Lena Marco Nadia Omar Priya Quentin
Rosa Samir Tara Umar Vera Wen Ximena Yusuf Zoe Aisha Bruno Chloe Dmitri Esme Felix Gita Hugo Ines Jamal Kai Lucia
Mateo Nora Oscar Paula Ravi Sofia Tomas Uma Victor Wanda Xavier Yara Zane Alma Boris Celine Diego Emma Filip Greta
Hannah Ivan Julia Karim Leila Mika Nils Olga Pedro Rania Sven Talia Ugo Valentina Will Yasmin Zack Amir Bianca
Cyrus Dana Eli Fatima Gabe Helga Ilya Jade Kofi Lars Maya Noor Otto Petra Rafael Selma Theo Ulla Vik Wilma""".split()
LOCOMO_SPEAKERS = ("Caroline Melanie Jon Gina John Maria Joanna Nate Tim Audrey Andrew Calvin Dave Evan Sam James "
                   "Jolene Deborah").split()
RELATIONS = ("sister brother mother father aunt uncle cousin grandmother grandfather daughter son niece nephew "
             "partner wife husband best friend neighbour colleague manager roommate mentor landlord").split()
RELATIONS = ["best friend" if r == "best" else r for r in RELATIONS if r != "friend"]
CITIES = ("Lisbon Porto Madrid Seville Barcelona Paris Lyon Marseille Berlin Munich Hamburg Vienna Zurich Geneva "
          "Milan Rome Naples Florence Athens Istanbul Prague Krakow Warsaw Budapest Copenhagen Oslo Stockholm "
          "Helsinki Dublin Edinburgh London Manchester Bristol Amsterdam Rotterdam Brussels Antwerp Toronto "
          "Montreal Vancouver Boston Chicago Denver Austin Seattle Portland Atlanta Miami Tokyo Osaka Kyoto Seoul "
          "Busan Taipei Singapore Bangkok Hanoi Manila Jakarta Sydney Melbourne Auckland Nairobi Lagos Accra Cairo "
          "Marrakesh Cape-Town Lima Bogota Santiago Mexico-City Oaxaca Havana Reykjavik").replace("-", " ").split()
CITIES = [c.replace("Cape", "Cape").replace("Mexico", "Mexico") for c in CITIES]
JOBS = ("nurse teacher carpenter software engineer data analyst pharmacist architect chef electrician lawyer "
        "accountant journalist photographer dentist firefighter pilot librarian plumber translator vet "
        "physiotherapist barista graphic designer paramedic baker tailor economist biologist").split()
JOBS = ["software engineer" if j == "software" else "data analyst" if j == "data" else
        "graphic designer" if j == "graphic" else j for j in JOBS if j not in ("engineer", "analyst", "designer")]
ALLERGENS = "peanuts shellfish soy milk gluten eggs sesame penicillin cats pollen dust mites latex kiwi almonds".split()
ALLERGENS = ["soy milk" if a == "soy" else "dust mites" if a == "dust" else a for a in ALLERGENS
             if a not in ("milk", "mites")]
DRINKS = ("espresso green tea oat latte black coffee chai sparkling water kombucha hot chocolate matcha "
          "orange juice mint tea flat white cold brew rooibos").split()
DRINKS = ["green tea", "oat latte", "black coffee", "sparkling water", "hot chocolate", "orange juice", "mint tea",
          "flat white", "cold brew", "espresso", "chai", "kombucha", "matcha", "rooibos"]
SKILLS = ("Spanish Japanese Portuguese German Mandarin the piano the guitar the violin pottery woodworking "
          "rock climbing salsa dancing sailing chess watercolour painting calligraphy Python Rust knitting "
          "photography bouldering surfing sourdough baking beekeeping").split()
SKILLS = ["Spanish", "Japanese", "Portuguese", "German", "Mandarin", "the piano", "the guitar", "the violin", "pottery",
          "woodworking", "rock climbing", "salsa dancing", "sailing", "chess", "watercolour painting", "calligraphy",
          "Python", "Rust", "knitting", "photography", "bouldering", "surfing", "sourdough baking", "beekeeping"]
MONTHS = "January February March April May June July August September October November December".split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
YEARS = [str(y) for y in range(2015, 2026)]
HOURS = ["8am", "9am", "9:30am", "10am", "11am", "noon", "1pm", "2:30pm", "3pm", "4pm", "5:15pm", "6pm", "7pm"]
APPOINTMENTS = ["dentist appointment", "eye exam", "haircut", "car service", "physio session", "parent-teacher meeting",
                "job interview", "vet visit", "flight", "yoga class", "therapy session", "tax advisor meeting",
                "piano lesson", "blood test", "passport renewal"]
PETS = ["cat", "dog", "rabbit", "parrot", "hamster", "tortoise", "ferret", "goldfish", "corgi", "beagle",
        "labrador", "tabby kitten", "guinea pig"]
PET_NAMES = ("Miso Pixel Biscuit Luna Mochi Pepper Olive Ziggy Nala Rocket Maple Tofu Sushi Basil Clover Pickles "
             "Juniper Noodle Waffles Comet Hazel Bean Sprout Chai Oreo Kiwi Poppy Bowie Frodo Yoda").split()
SEASONS = ["spring", "summer", "autumn", "winter"]
CUISINES = ["Thai", "Ethiopian", "Georgian", "Peruvian", "Sichuan", "Neapolitan", "Lebanese", "Korean", "Basque",
            "Vietnamese", "Oaxacan", "Portuguese", "Japanese", "Turkish", "Moroccan", "vegan", "Indian"]
RESTAURANT_A = ["The Blue", "Little", "Casa", "Golden", "Old", "Red", "Green", "Silver", "Wild", "Hidden", "Lucky"]
RESTAURANT_B = ["Lantern", "Fig", "Harbour", "Olive", "Kitchen", "Table", "Spoon", "Garden", "Fox", "Door", "Pepper"]
TOPICS = ["climate policy", "ancient Rome", "urban gardening", "space exploration", "stoicism", "jazz history",
          "behavioural economics", "mycology", "the French revolution", "quantum computing", "birdwatching",
          "minimalism", "Japanese woodblock prints", "marathon training", "game theory", "ocean conservation"]
GENRES = ["mystery", "science fiction", "non-fiction", "fantasy", "history", "poetry", "biography", "graphic novel"]
FAVOURITE = [("film", ["Spirited Away", "Casablanca", "Arrival", "Amelie", "Parasite", "The Matrix", "Paddington 2",
                       "Moonlight", "Alien", "Whiplash"]),
             ("band", ["Radiohead", "ABBA", "Daft Punk", "Fleetwood Mac", "Khruangbin", "The Beatles", "Bjork",
                       "Massive Attack", "Vampire Weekend", "Nina Simone"]),
             ("book", ["Middlemarch", "Dune", "The Hobbit", "Beloved", "Pachinko", "Stoner", "Circe", "Ulysses",
                       "The Overstory", "Piranesi"]),
             ("dish", ["ramen", "paella", "lasagne", "pho", "shakshuka", "dumplings", "risotto", "tacos al pastor",
                       "bibimbap", "moussaka"]),
             ("season", SEASONS), ("colour", ["teal", "mustard yellow", "forest green", "navy", "burgundy", "lilac"]),
             ("sport", ["tennis", "football", "basketball", "cycling", "swimming", "badminton", "cricket"])]
ACTIVITIES = ["hiking", "kayaking", "cycling", "camping", "running", "skiing", "fishing", "birdwatching", "swimming",
              "sailing", "stargazing", "trail running"]
PLACES = ["the lake", "the old harbour", "the national park", "the river", "the botanical garden", "the coast",
          "the mountains", "the city park", "the canal", "the vineyard", "the forest trail", "the beach"]
FEELINGS = [("was nervous", "the"), ("is excited", "the"), ("felt proud", "the"), ("is worried", "the"),
            ("was disappointed", "the"), ("is happy", "the"), ("felt relieved", "the")]
EVENTS = ["promotion", "move to a new flat", "wedding", "marathon", "exam results", "job offer", "surgery",
          "art exhibition", "graduation", "concert", "book launch", "first half marathon", "house renovation"]
PROJECTS = ["billing", "onboarding", "search", "mobile app", "data pipeline", "design system", "checkout",
            "recommendation", "analytics dashboard", "migration", "customer portal", "inventory"]
TECH = ["Python", "TypeScript", "Go", "Rust", "Postgres", "Kafka", "React", "Kubernetes", "Django", "SQLite",
        "Terraform", "Swift", "Kotlin", "Redis", "GraphQL", "Elixir"]
TASKS = ["renew the car insurance", "call the landlord about the boiler", "book a table for the anniversary",
         "send the invoice to the client", "water the plants at the cottage", "return the library books",
         "pick up the dry cleaning", "buy a birthday present", "back up the laptop", "pay the electricity bill",
         "email the school about the trip", "order new running shoes", "schedule the team retro"]
COLORS = ["red", "blue", "white", "black", "silver", "green", "yellow", "grey", "orange"]
VEHICLES = ["bike", "electric scooter", "hatchback", "van", "motorbike", "cargo bike", "camper van", "estate car"]
DIETS = ["vegetarian", "vegan", "pescatarian", "gluten-free", "lactose-free", "keto", "halal", "kosher"]
SCHEDULES = ["works night shifts", "works from home on Fridays", "goes to the gym before work",
             "takes the kids to school", "teaches an evening class", "volunteers at the food bank"]


def _pick(rng: random.Random, seq: list[str]) -> str:
    return seq[rng.randrange(len(seq))]


def _fact(rng: random.Random) -> tuple[str, str]:
    """One templated fact and a question it answers."""
    n, n2 = _pick(rng, NAMES), _pick(rng, NAMES)
    rel, city = _pick(rng, RELATIONS), _pick(rng, CITIES)
    m, y, d = _pick(rng, MONTHS), _pick(rng, YEARS), rng.randint(1, 28)
    t = rng.randrange(30)
    if t == 0:
        job = _pick(rng, JOBS)
        return (f"{n}'s {rel} lives in {city} and works as a {job}.", f"Where does {n}'s {rel} live?")
    if t == 1:
        a = _pick(rng, ALLERGENS)
        return (f"My {rel} {n} is allergic to {a}.", f"What is my {rel} allergic to?")
    if t == 2:
        a, b = rng.sample(DRINKS, 2)
        return (f"I prefer {a} over {b} in the {_pick(rng, ['morning', 'afternoon', 'evening'])}.",
                "What does the user like to drink?")
    if t == 3:
        s = _pick(rng, SKILLS)
        return (f"{n} started learning {s} in {m} {y}.", f"What is {n} learning?")
    if t == 4:
        ap = _pick(rng, APPOINTMENTS)
        return (f"My {ap} is on {_pick(rng, WEEKDAYS)} {d} {m} at {_pick(rng, HOURS)}.", f"When is my {ap}?")
    if t == 5:
        pet, pn = _pick(rng, PETS), _pick(rng, PET_NAMES)
        return (f"{n} adopted a {pet} named {pn} last {_pick(rng, SEASONS)}.", f"What is the name of {n}'s {pet}?")
    if t == 6:
        topic = _pick(rng, TOPICS)
        return (f"I'm reading {_pick(rng, GENRES)} books about {topic} these days.",
                f"What books is the user reading about {topic}?")
    if t == 7:
        r = f"{_pick(rng, RESTAURANT_A)} {_pick(rng, RESTAURANT_B)}"
        c = _pick(rng, CUISINES)
        return (f"{n} recommended {r} in {city} for {c} food.", f"Which restaurant in {city} serves good {c} food?")
    if t == 8:
        cat, items = FAVOURITE[rng.randrange(len(FAVOURITE))]
        return (f"{n}'s favourite {cat} is {_pick(rng, items)}.", f"What is {n}'s favourite {cat}?")
    if t == 9:
        return (f"{n} is planning a trip to {city} in {m} {y} with their {rel}.", f"Who is travelling to {city}?")
    if t == 10:
        act, pl = _pick(rng, ACTIVITIES), _pick(rng, PLACES)
        return (f"I went {act} with {n} near {pl} on {d} {m} {y}.", f"What did I do with {n} near {pl}?")
    if t == 11:
        f, _ = FEELINGS[rng.randrange(len(FEELINGS))]
        ev = _pick(rng, EVENTS)
        return (f"{n} {f} about {rel} {n2}'s {ev} in {m}.", f"How does {n} feel about the {ev}?")
    if t == 12:
        p, a, b = _pick(rng, PROJECTS), *rng.sample(TECH, 2)
        return (f"{n} works on the {p} project using {a} and {b}.", f"Which technologies does the {p} project use?")
    if t == 13:
        task = _pick(rng, TASKS)
        return (f"Remind me to {task} before {_pick(rng, WEEKDAYS)} {d} {m}.", f"What do I need to do before {m}?")
    if t == 14:
        col, v = _pick(rng, COLORS), _pick(rng, VEHICLES)
        return (f"{n} bought a {col} {v} from a shop in {city} in {m} {y}.", f"What did {n} buy in {city}?")
    if t == 15:
        diet = _pick(rng, DIETS)
        return (f"{n} has been {diet} since {y} and avoids {_pick(rng, ALLERGENS)}.",
                f"Does {n} have any dietary restrictions?")
    if t == 16:
        sch = _pick(rng, SCHEDULES)
        return (f"{n}, my {rel}, {sch} and is free on {_pick(rng, WEEKDAYS)}s.", f"When is my {rel} {n} free?")
    if t == 17:
        return (f"{n}'s birthday is on {d} {m}; they turn {rng.randint(5, 90)} in {y}.", f"When is {n}'s birthday?")
    if t == 18:
        return (f"{n} moved from {city} to {_pick(rng, CITIES)} in {y} for a job as a {_pick(rng, JOBS)}.",
                f"Why did {n} move away from {city}?")
    if t == 19:
        ev = _pick(rng, EVENTS)
        return (f"We celebrated {n2}'s {ev} at {_pick(rng, RESTAURANT_A)} {_pick(rng, RESTAURANT_B)} on {d} {m}.",
                f"Where did we celebrate {n2}'s {ev}?")
    if t == 20:
        return (f"User's {rel} {n} recommended the {_pick(rng, GENRES)} book {_pick(rng, FAVOURITE[2][1])}.",
                f"Which book did {n} recommend?")
    if t == 21:
        return (f"{n} runs {rng.randint(2, 42)} km every {_pick(rng, WEEKDAYS)} along {_pick(rng, PLACES)}.",
                f"How far does {n} run?")
    if t == 22:
        return (f"I keep my spare keys with {n}, my {rel}, who lives on {_pick(rng, RESTAURANT_B)} Street.",
                "Who has my spare keys?")
    if t == 23:
        return (f"{n} and {n2} met at a {_pick(rng, ACTIVITIES)} club in {city} in {y}.",
                f"How did {n} and {n2} meet?")
    if t == 24:
        return (f"My {_pick(rng, VEHICLES)} needs new tyres before the trip to {city} in {m}.",
                "What needs fixing before the trip?")
    if t == 25:
        return (f"{n} is saving up for a {_pick(rng, ['house', 'flat', 'sabbatical', 'wedding', 'new laptop', 'car'])} "
                f"in {city} by {y}.", f"What is {n} saving for?")
    if t == 26:
        return (f"The {_pick(rng, PROJECTS)} deadline moved to {d} {m} {y} after the {_pick(rng, EVENTS)}.",
                "When is the project deadline?")
    if t == 27:
        return (f"{n} doesn't like {_pick(rng, CUISINES)} food but loves {_pick(rng, FAVOURITE[3][1])}.",
                f"What food does {n} dislike?")
    if t == 28:
        return (f"{n}'s {rel} plays {_pick(rng, FAVOURITE[6][1])} on {_pick(rng, WEEKDAYS)} evenings in {city}.",
                f"What sport does {n}'s {rel} play?")
    return (f"I told {n} about my {_pick(rng, APPOINTMENTS)} and {n2} offered to drive me at {_pick(rng, HOURS)}.",
            f"Who offered to drive me?")


def _locomo() -> tuple[list[tuple[str, str, str]], list[str]]:
    """(speaker, date, text) of every turn, and every question."""
    data = json.loads(LOCOMO.read_text())
    turns, questions = [], []
    for item in data:
        conv = item["conversation"]
        for key, session in conv.items():
            if not (key.startswith("session_") and isinstance(session, list)):
                continue
            date = conv.get(f"{key}_date_time", "")
            for t in session:
                turns.append((t["speaker"], date, t["text"]))
        questions.extend(q["question"] for q in item["qa"])
    return turns, questions


_NAME_RE = re.compile(r"\b(" + "|".join(LOCOMO_SPEAKERS) + r")\b")


def _swap_names(rng: random.Random, text: str) -> str:
    mapping: dict[str, str] = {}
    return _NAME_RE.sub(lambda m: mapping.setdefault(m.group(1), _pick(rng, NAMES)), text)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.casefold()).strip().rstrip(" .!?;,")


def memories(n: int, seed: int = 0) -> list[str]:
    """``n`` unique memories: about 30% conversation turns (real ones first), 70% templated facts."""
    rng = random.Random(seed)
    turns, _ = _locomo()
    out: list[str] = []
    seen: set[str] = set()

    def put(text: str) -> None:
        k = _norm(text)
        if k not in seen:
            seen.add(k)
            out.append(text)

    real = list(turns)
    rng.shuffle(real)
    real_iter = iter(real)
    while len(out) < n:
        if rng.random() < 0.3:
            turn = next(real_iter, None)
            if turn is not None:
                put(turn[2])
                continue
            speaker, date, text = _pick_turn(rng, turns)
            if rng.random() < 0.5:
                put(_swap_names(rng, f"{speaker} said: {text}"))
            else:
                put(_swap_names(rng, f"On {date.split(' on ')[-1]}, {speaker}: {text}"))
        else:
            put(_fact(rng)[0])
    return out


def _pick_turn(rng: random.Random, turns: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    return turns[rng.randrange(len(turns))]


def queries(n: int, seed: int = 1) -> list[str]:
    """``n`` questions: half LoCoMo questions (names varied), half questions about templated facts."""
    rng = random.Random(seed)
    _, questions = _locomo()
    out = []
    for i in range(n):
        if i % 2:
            q = _pick(rng, questions)
            out.append(_swap_names(rng, q) if rng.random() < 0.5 else q)
        else:
            out.append(_fact(rng)[1])
    return out


def stream(n: int, seed: int = 0) -> Iterator[str]:
    yield from memories(n, seed)


if __name__ == "__main__":  # a look at the corpus
    import sys

    k = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    for text in memories(k):
        print("M:", text)
    for q in queries(10):
        print("Q:", q)
