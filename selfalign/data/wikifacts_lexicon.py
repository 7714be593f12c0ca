"""The words of the Wikidata long-form benchmark (``eval wikifacts``): for each qa_wikidata relation a profile may
ask about, its name in a prompt ("official language"), the prose a demonstration or a planted profile states it in
("The official language of {s} is {v}."), and its *cues*, the words a sentence must hold for a value in it to count
as a statement of that relation ("official language"); plus the aliases of values (France <-> French, Islam <->
Muslim, piano <-> pianist: ``wikifacts_values``) and the relations whose values are many by nature.

A relation of qa_wikidata without a row here (blood type, given name, follows, ...) is never asked and never
mapped: a sentence about it is unverifiable. Cues are regular expressions over the sentence, matched without
case; a cue inside a longer cue ("language" inside "official language") does not count. An anchored cue
(``Before``) licenses only the value it stands before: the ``NATIONALITY`` cue ("a French actor", "an Indian
citizen") makes a demonym a statement of nationality; "born in Mumbai, India" holds no nationality cue, so it is a
birthplace (cue "born"), never a citizenship. ``<DEMONYM>`` in an anchored cue stands for every demonym ("a
German-born": a birthplace). A ``Weak`` cue counts only for a subject that holds a relation it cues: "La Paz is in
Bolivia" states a country, "She is in Europe" (a person, who holds no place relation) nothing. Other placeholders:
``<HYPHENATED>`` the hyphenated demonyms, ``<CONTINENTAL>`` continents' adjectives, ``<PLAYER>`` instrumentalists
("a violinist"), ``<PREPOSITION>`` the prepositions no nationality reads across. ``OPEN_CUES`` are the phrases after
which a name no vocabulary knows is still a value ("developed by EA Sports")."""
from __future__ import annotations

import re
from dataclasses import dataclass

from selfalign.data.wikifacts_values import ALIASES, CONTINENTAL, DEMONYMS, demonym_pattern

# --- relations ---------------------------------------------------------------------------------------------
LOCATED = (r"\b(?:located|situated|lies|lying|found|set|sits|exist(?:s|ed))\s+(?:in|on|within)\b|"
           r"\bpart of\b|\bregion of\b|"
           r"\b(?:city|town|village|port|state|province|region|island|municipality|"
           r"district|county|area|nation) (?:in|of)\b")
COUNTRY = r"\bcountr(?:y|ies)\b|\bnation\b"
LANGUAGE = r"\blanguages?\b|\btongue\b"


@dataclass(frozen=True)
class Before:
    """An anchored cue: a pattern that ends where its value begins ("is a" before "Muslim"); it licenses that one
    value only, never another value elsewhere in the sentence."""
    pattern: str


@dataclass(frozen=True)
class Weak:
    """A cue that counts only for a subject holding one of the relations it cues (``IS_IN``: places only)."""
    pattern: str


# "the country of", "the African nation of": the words between a cue and its value ("born in the country of Japan")
PLACE_NOUN = (r"(?:the\s+)?(?:(?:[\w-]+\s+)?(?:country|nation|state|city|region|province|town|village) of\s+"
              r"(?:the\s+)?)?")
IS_IN = Weak(r"\b(?:is|are|was|were) in\b")
PLAYED_IN = Weak(r"\bplayed in\b")  # "a sport that is played in Australia": a country, only of a subject holding one
# "a French actor", "an Indian-born" (the hyphenated word before it), "is the French President", not "a
# French-speaking", "a French speaker", "the French language", "a Native American"; of a compound the last part ("a
# Mexican-American": American; not "Austro-Hungarian", one demonym); no preposition between article and demonym ("a
# writer of Irish literature") nor before the article ("a story about a French artist", "born to a Jewish father",
# "killing a British soldier": another person)
NATIONALITY = Before(r"(?<!ing\s)(?<!about\s)(?<!with\s)(?<!by\s)(?<!of\s)(?<!for\s)(?<!to\s)(?<!like\s)"
                     r"\b(?:an?|(?:(?<=\bis\s)|(?<=\bwas\s))the)\s+(?:(?!<PREPOSITION>)[\w-]+\s+){0,2}?"
                     r"(?:(?!<HYPHENATED>)[a-z]+-)?"
                     r"(?=<DEMONYM>\b(?!-speak|-born|-language|-[a-z]|\s+speak|\s+language|\s+tongue))"
                     r"(?!(?<=[Nn]ative\s)American\b)")
FROM = Before(r"\bfrom\s+(?:the\s+)?")  # "a politician from Argentina", "a fairy tale from Germany"


@dataclass(frozen=True)
class Field:
    label: str             # how a profile prompt asks for it
    prose: str             # a sentence stating it: {s} subject, {v} value(s)
    cues: tuple            # regular expressions (case-insensitive) or anchored ones (``Before``)
    kind: str = "other"    # country | place | language | religion | sport | instrument | group | other: aliases


F = Field
FIELDS: dict[str, Field] = {
    "The country of citizenship of _ is": F("country of citizenship", "{s} is a citizen of {v}.",
                                            (r"\bcitizen(?:ship|s)?\b|\bnationality\b|\bnational of\b", NATIONALITY,
                                             Before(r"\bmember of\s+" + PLACE_NOUN + r"(?![\w\s-]{1,30}?'s\b)"), FROM),
                                            "country"),
    "The native language of _ is": F("native language", "The native language of {s} is {v}.",
                                     ((r"\bnative (?:language|tongue|speaker)s?\b|\bmother tongue\b|"
                                       r"\bfirst language\b"), Before(r"\bnative\s+(?=\w+[-\s]speak)")),
                                     "language"),
    "The country of _ is": F("country", "{s} is in the country of {v}.",
                             (COUNTRY, LOCATED, NATIONALITY, IS_IN, PLAYED_IN),
                             "country"),
    "The religion of _ is": F("religion", "The religion of {s} is {v}.",
                              ((r"\breligio(?:n|us)\b|\bfaith\b|\bdevout\b|\bpractic|\bconvert|\bbeliever\b|"
                                r"\bfollower\b|\badherent\b"),
                               Before(r"\b(?:is|was|are|were|became)\s+(?:\w+\s+)?an?\s+"
                                      r"(?:(?!<PREPOSITION>)[\w-]+\s+){0,3}?"
                                      r"(?=(?:muslim|christian|hindu|buddhist|jew|jewish|catholic|atheist|sikh)\b)")),
                              "religion"),
    "_ is located in": F("location", "{s} is located in {v}.",
                         (LOCATED, r"\bin the (?:state|province|region|county|district) of\b",
                          Before(r"\b(?:located|situated)\s+in\s+" + PLACE_NOUN), IS_IN), "country"),
    "The language of _ is": F("language", "{s} is in the {v} language.",
                              (LANGUAGE, r"\b(?:written|sung|performed|recorded|published|filmed)\s+in\b",
                               r"(?<=-)(?:speaking|language)\b", Before(r"\b(?:is|are|was|were)\s+in\s+")),
                              "language"),
    "_ is capital of": F("country it is the capital of", "{s} is the capital of {v}.", (r"\bcapital\b",),
                         "country"),
    "The capital of _ is": F("capital", "The capital of {s} is {v}.",
                             (r"\bcapital\b", r"\bseat of government\b"), "place"),
    "The sport played by _ is": F("sport", "The sport played by {s} is {v}.",
                                  (r"\bsports?\b|\bplay(?:s|ed|ing|er|ers)?\b|\bathlete\b|\bcompet",
                                   Before(r"\b(?:is|was|an?)\s+(?:an?\s+)?(?:\w+\s+){0,2}?(?=(?:footballer|cricketer|"
                                          r"golfer|swimmer|boxer|cyclist|wrestler|fencer|rower|gymnast|archer)\b)")),
                                  "sport"),
    # no demonym cue: "a Canadian footballer" is a citizenship, the country represented needs its own words
    "The country for sport played by _ is": F("country represented in sport", "{s} represents {v} in sport.",
                                              (r"\brepresent|\bnational (?:team|side|squad)\b|\bplay(?:s|ed)? for\b|"
                                               r"\binternationals?\b",), "country"),
    "The continent of _ is": F("continent", "{s} is on the continent of {v}.",
                               (r"\bcontinent\b", LOCATED, IS_IN, r"\bcountr(?:y|ies) in\b",
                                Before(r"\ban?\s+(?:\w+\s+)?(?=<CONTINENTAL>\s+(?:country|nation|state|city|capital|"
                                       r"town|island|region|port|kingdom|empire|republic|monarchy)\b)")), "continent"),
    "The original country of _ is": F("country of origin", "{s} originated in {v}.",
                                      ((r"\borigin|\bcomes? from\b|\bcame from\b|"
                                        r"\b(?:produced|made|created|developed|founded) in\b"), NATIONALITY, COUNTRY,
                                       FROM, r"\bnative of\b"), "country"),
    "The genre of _ is": F("genre", "The genre of {s} is {v}.",
                           (r"\bgenres?\b|\bstyle\b|\btype of\b|\bkind of\b",
                            Before(r"\ban?\s+(?:[\w-]+\s+)?(?=[\w-]+\s+(?:show|series|film|movie|song|album|novel|"
                                   r"book|poem|play|opera|magazine|programme|program)s?\b)"))),  # "a comedy show"
    "The team position of _ is": F("team position", "{s} plays in the position of {v}.",
                                   (r"\bposition\b|\bplay(?:s|ed|ing)? as\b|\bplay(?:s|ed|ing)? at\b",)),
    "The languages spoken, written or signed by _ is": F(
        "languages spoken", "{s} speaks {v}.", (r"(?<!-)\bspeak|\bspoke|\bfluent\b", LANGUAGE), "language"),
    "The official language of _ is": F("official language", "The official language of {s} is {v}.",
                                       (r"\bofficial languages?\b|\bofficially\b",), "language"),
    "The military rank of _ is": F("military rank", "{s} held the military rank of {v}.",
                                   (r"\branks?\b|\branked\b|\bpromoted\b|\bcommissioned\b",)),
    "The residence of _ is": F("residence", "{s} lived in {v}.",
                               (r"\bliv(?:e|es|ed|ing) in\b|\bresid|\bsettled in\b|\bmoved to\b|\bhome in\b",),
                               "place"),
    "_ shares a border with": F("neighbours", "{s} shares a border with {v}.",
                                (r"\bborders?\b|\bbordered\b|\bbordering\b|\bneighbou?r|\badjacent\b",), "country"),
    "The basic form of government of _ is": F("form of government", "The form of government of {s} is a {v}.",
                                              (r"\bgovern|\bstate\b|\bregime\b", Before(
                                                  r"\b(?:is|was) an?\s+(?:\w+\s+)?(?=(?:monarchy|republic)\b)"))),
    "The language used in _ is": F("languages used", "The languages used in {s} include {v}.",
                                   (LANGUAGE, r"\bspoken\b"), "language"),
    "The eye color of _ is": F("eye color", "The eye color of {s} is {v}.", (r"\beye colou?rs?\b|\beyes?\b",)),
    "The headquarters location of _ is": F("headquarters", "{s} has its headquarters in {v}.",
                                           (r"\bheadquarter|\bhead office\b|\bbased in\b|\bhq\b",), "place"),
    "_ writing languages": F("languages written in", "{s} wrote in {v}.",
                             (r"\bwrit(?:e|es|ing|ten)\b|\bwrote\b|\bauthored\b",), "language"),
    "The instrument of _ is": F("instrument", "{s} plays the {v}.",
                                (r"\binstruments?\b|\bplay(?:s|ed|ing|er)?\b",
                                 Before(r"\ban?\s+(?:[\w-]+\s+){0,2}?(?=<PLAYER>\b)")), "instrument"),
    "_ convicted of": F("crime convicted of", "{s} was convicted of {v}.",
                        (r"\bconvicted\b|\bguilty\b|\bsentenced\b|\bcharged\b",)),
    "The voice type of _ is": F("voice type", "{s} has a {v} voice.",
                                (r"\bvoice\b|\bsing(?:s|er|ing)?\b|\bsang\b|\bvocal",
                                 Before(r"\b(?:is|was) an?\s+(?:\w+\s+)?"
                                        r"(?=(?:soprano|tenor|baritone|bass|mezzo|contralto)\b)"))),
    "The ethnic group of _ is": F("ethnic group", "{s} belongs to the ethnic group of the {v}.",
                                  (r"\bethnic|\bdescent\b|\bancestry\b|\bheritage\b|\bpeople\b",), "group"),
    "The main subject of _ is": F("main subject", "The main subject of {s} is {v}.",
                                  (r"\bsubjects?\b|\babout\b|\bfocus|\btopics?\b|\bdeals? with\b|\btheme",)),
    "The emergency phone number of _ is": F("emergency phone number", "The emergency phone number of {s} is {v}.",
                                            (r"\bemergency\b",)),
    "The record label of _ is": F("record label", "{s} recorded for the label {v}.",
                                  (r"\blabels?\b|\bsigned\b|\brecords\b",)),
    "The noble title of _ is": F("noble title", "{s} held the noble title of {v}.",
                                 (r"\btitles?\b|\bnoble\b|\bcrowned\b|\breigned\b|\bruled\b",)),
    "The currency of _ is": F("currency", "The currency of {s} is the {v}.", (r"\bcurrency\b|\bmoney\b",)),
    "The place of birth of _ is": F("place of birth", "{s} was born in {v}.",
                                    (r"\bborn\b|\bbirth\s?place\b|\bplace of birth\b|\bnative of\b",
                                     Before(r"\bborn\s+in\s+" + PLACE_NOUN), Before(r"\b(?=<DEMONYM>-born\b)")),
                                    "place"),
    "The official religion of _ is": F("official religion", "The official religion of {s} is {v}.",
                                       (r"\bofficial religion\b|\bstate religion\b",), "religion"),
    "The official color of _ is": F("official colors", "The official colors of {s} are {v}.",
                                    (r"\bofficial colou?rs?\b",)),
    "The color of _ is": F("color", "The color of {s} is {v}.", (r"\bcolou?rs?\b|\bcolou?red\b",)),
    "The material used in _ is": F("material", "{s} is made of {v}.",
                                   (r"\bmade (?:of|from|with)\b|\bmaterials?\b|\bbuilt (?:of|from|with)\b",)),
    "The developer of _ is": F("developer", "{s} was developed by {v}.", (r"\bdevelop",)),
    "The publisher of _ is": F("publisher", "{s} was published by {v}.", (r"\bpublish",)),
    "The manufacturer of _ is": F("manufacturer", "{s} is manufactured by {v}.",
                                  (r"\bmanufactur|\bmade by\b|\bbuilt by\b|\bproduced by\b",)),
    "The original broadcaster of _ is": F("original broadcaster", "{s} was first broadcast on {v}.",
                                          (r"\bbroadcast|\baired\b|\bnetwork\b|\bchannel\b",)),
    "The academic degree of _ is": F("academic degree", "{s} held the academic degree of {v}.",
                                     (r"\bdegree\b|\bgraduated\b|\bearned\b|\btitle\b",)),
    "The military branch of _ is": F("military branch", "{s} served in the {v}.",
                                     (r"\bserv(?:ed|es|ing) in\b|\bbranch\b|\bjoined\b",)),
    "The place of publication of _ is": F("place of publication", "{s} was published in {v}.", (r"\bpublish",),
                                          "place"),
    "_ is indigenous to": F("place it is indigenous to", "{s} is indigenous to {v}.",
                            (r"\bindigenous\b|\bnative to\b",), "country"),
    "_ endemic to": F("place it is endemic to", "{s} is endemic to {v}.", (r"\bendemic\b|\bfound only\b",),
                      "country"),
    "_ is territory claimed by": F("country claiming it", "{s} is claimed by {v}.", (r"\bclaim",), "country"),
    "The basin country of _ is": F("basin countries", "The basin countries of {s} include {v}.",
                                   (r"\bbasin\b|\bflows?\b|\bflowing\b", COUNTRY), "country"),
    "The public holiday of _ is": F("public holiday", "{s} celebrates {v} as a public holiday.",
                                    (r"\bholidays?\b|\bcelebrat",)),
}
del F

# Relations whose values are many by nature, whatever the file holds for one subject (borders, colours,
# languages, genres, instruments, ranks held over a career), and places that sit in one another (a subject
# "located in Alabama" is also located in the United States; "based in Germany" is true of a firm based in
# Berlin): a value outside gold is unverifiable, never contradicted. ``wikifacts.multi_valued`` adds every
# relation where at least 10% of the file's subjects have two gold values or more.
MULTI_VALUED = frozenset({
    "_ shares a border with", "The color of _ is", "The official color of _ is", "The instrument of _ is",
    "The genre of _ is", "The languages spoken, written or signed by _ is", "_ writing languages",
    "The language used in _ is", "The official language of _ is", "The material used in _ is",
    "The main subject of _ is", "The record label of _ is", "The military rank of _ is", "The noble title of _ is",
    "_ is located in", "The residence of _ is", "The headquarters location of _ is", "The place of birth of _ is",
    "The place of publication of _ is", "_ is indigenous to", "_ endemic to", "The basin country of _ is",
    "The public holiday of _ is", "The ethnic group of _ is", "_ is territory claimed by"})

# "The country of <a person>" / "<a novel>": a subject that holds no country means by it the first of these it holds
# (``wikifacts_frames``)
FRAME_FALLBACK = {"The country of _ is": ("The country of citizenship of _ is", "The original country of _ is")}
# shorter names a label frame may use for a field ("The country represented by X is V"; singular and plural of a
# label's words are read alike: "The language spoken by X")
FRAME_LABELS = {"country represented": "The country for sport played by _ is",
                "country of representation in sport": "The country for sport played by _ is"}
# relations only a person holds: a demonym before a noun ("a British soap opera", "a Korean nation") is a
# citizenship for a subject that holds one of these and no country relation, else its country
PERSON = frozenset({"The native language of _ is", "The languages spoken, written or signed by _ is",
                    "The eye color of _ is", "The sport played by _ is", "The team position of _ is",
                    "The voice type of _ is", "The instrument of _ is", "The military rank of _ is",
                    "The military branch of _ is", "The place of birth of _ is", "The residence of _ is",
                    "The academic degree of _ is", "The noble title of _ is", "_ convicted of", "_ writing languages"})
NATIONAL = ("The country of citizenship of _ is", "The country of _ is", "The original country of _ is",
            "The country for sport played by _ is", "_ is located in")
# Open cues: a phrase after which a name is the relation's value even outside every vocabulary ("developed by EA
# Sports", "born in Pune, India", "is in the European Union"); <NAME> is the value (capitalised words), <DESCRIBED>
# a few lower-case words or demonyms before it ("by the Japanese game company Square"). A ``Weak`` one counts only
# for a subject that holds a relation its plain form ("is in") cues.
_BY = r"\s+by)\s+<DESCRIBED><NAME>"
OPEN_CUES = {
    "The developer of _ is": r"(?i:\bdeveloped" + _BY,
    "The publisher of _ is": r"(?i:\bpublished" + _BY,
    "The manufacturer of _ is": r"(?i:\b(?:manufactured|built|produced)" + _BY,
    "The original broadcaster of _ is": r"(?i:\b(?:broadcast|aired|premiered)\s+(?:on|by))\s+<DESCRIBED><NAME>",
    "The place of birth of _ is": r"(?i:\bborn(?:\s+on\s+[^.;]{1,30}?,)?\s+in\s+<PLACE>)<NAME>",
    "The residence of _ is": r"(?i:\b(?:lives|lived|living|resides|resided|settled)\s+in\s+<PLACE>)<NAME>",
    "The headquarters location of _ is": r"(?i:\b(?:headquartered|based)\s+in\s+<PLACE>)<NAME>",
    "_ is located in": (r"(?i:\b(?:located|situated)\s+(?:in|on)\s+<PLACE>)<NAME>",
                        Weak(r"(?i:\b(?:is|are|was|were)\s+in\s+<PLACE>)<NAME>"),
                        Weak(r"(?i:\b(?:city|town|village|port|state|province|region|island|municipality|district|"
                             r"county|area)\s+in\s+<PLACE>)<NAME>")),
    "The country of citizenship of _ is": r"(?i:\b(?:citizen|national|member)\s+of\s+(?:the\s+)?(?:[\w-]+\s+)?"
                                          r"(?:country|nation|state|republic|kingdom)\s+of\s+(?:the\s+)?)<NAME>",
    "The continent of _ is": r"(?i:\bcontinent\s+of\s+)<NAME>",
}
MONTHS = frozenset("january february march april may june july august september october november december".split())
def cue_patterns() -> list[tuple[str, str, bool, bool, int]]:
    """(pattern, relation, anchored, weak, rank) for every cue of the table; rank 0 is a relation's own first cue
    (where one phrase cues several relations, "located in", it goes first to the relation it names first)."""
    out = []
    for rel, f in FIELDS.items():
        for i, c in enumerate(f.cues):
            pat = c if isinstance(c, str) else _expand(c.pattern)
            out.append((pat, rel, isinstance(c, Before), isinstance(c, Weak), i))
    return out


_PREPOSITION = r"(?:of|in|for|with|about|from|by|to|on|at)\s"


def _expand(pattern: str) -> str:
    """A cue's placeholders: every demonym, the hyphenated ones, continents' adjectives, instrumentalists."""
    hyphenated = "|".join(re.escape(d) for ds in DEMONYMS.values() for d in ds if "-" in d)
    players = "|".join(a for forms in ALIASES["instrument"].values() for a in forms if a.endswith(("ist", "er"))
                       and a != "singer")
    return (pattern.replace("<DEMONYM>", demonym_pattern()).replace("<PREPOSITION>", _PREPOSITION)
            .replace("<HYPHENATED>", hyphenated)
            .replace("<CONTINENTAL>", "(?:" + "|".join(a for forms in CONTINENTAL.values() for a in forms) + ")")
            .replace("<PLAYER>", f"(?:{players})"))


def open_patterns() -> list[tuple[str, str, bool]]:
    """(pattern with a group ``v``, relation, weak) of every open cue."""
    out = []
    for rel, cues in OPEN_CUES.items():
        for c in cues if isinstance(cues, tuple) else (cues,):
            pat = c.pattern if isinstance(c, Weak) else c
            pat = (pat.replace("<PLACE>", PLACE_NOUN).replace("<NAME>", r"(?P<v>[A-Z][\w'.-]*(?:\s+(?:[A-Z0-9][\w'.-]*"
                                                                       r"|of|de|the)){0,3})\b")
                   .replace("<DESCRIBED>", r"(?:(?:the|an?)\s+)?(?:(?:(?!(?:and|or|who|which|that|is|was|"
                            r"are|were)\b|" + _PREPOSITION + r")[a-z][\w-]*|<DEMONYM>)\s+){0,4}"))
            out.append((_expand(pat), rel, isinstance(c, Weak)))
    return out


def label_of(relation: str) -> str:
    return FIELDS[relation].label


def relation_of_label(label: str) -> str | None:
    """The relation a field name (or a relation name) stands for; None if neither."""
    if label in FIELDS:
        return label
    return next((r for r, f in FIELDS.items() if f.label == label), None)
