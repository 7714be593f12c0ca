"""The words of the Wikidata long-form benchmark (``eval wikifacts``): for each qa_wikidata relation a profile may
ask about, its name in a prompt ("official language"), the prose a demonstration or a planted profile states it in
("The official language of {s} is {v}."), and its *cues*, the words a sentence must hold for a value in it to count
as a statement of that relation ("official language"); plus the aliases of values (France <-> French, Islam <->
Muslim, piano <-> pianist) and the relations whose values are many by nature.

A relation of qa_wikidata without a row here (blood type, given name, follows, ...) is never asked and never
mapped: a sentence about it is unverifiable. Cues are regular expressions over the sentence, matched without
case; a cue inside a longer cue ("language" inside "official language") does not count. An anchored cue
(``Before``) licenses only the value it stands before: the ``NATIONALITY`` cue ("a French actor", "an Indian
citizen") makes a demonym a statement of nationality; "born in Mumbai, India" holds no nationality cue, so it is a
birthplace (cue "born"), never a citizenship. ``<DEMONYM>`` in an anchored cue stands for every demonym ("a
German-born": a birthplace). A ``Weak`` cue counts only for a subject that holds a relation it cues: "La Paz is in
Bolivia" states a country, "She is in Europe" (a person, who holds no place relation) nothing."""
from __future__ import annotations

import re
from dataclasses import dataclass

# --- relations ---------------------------------------------------------------------------------------------
LOCATED = (r"\b(?:located|situated|lies|lying|found|set|sits)\s+(?:in|on|within)\b|\bpart of\b|\bregion of\b|"
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
# "a French actor", "an Indian-born" (the hyphenated word before it), not "a French-speaking", "a French speaker",
# "the French language", "a Native American"
NATIONALITY = Before(r"\ban?\s+(?:[\w-]+\s+){0,2}?"
                     r"(?=<DEMONYM>\b(?!-speak|-born|-language|\s+speak|\s+language|\s+tongue))"
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
    "The country of _ is": F("country", "{s} is in the country of {v}.", (COUNTRY, LOCATED, NATIONALITY, IS_IN),
                             "country"),
    "The religion of _ is": F("religion", "The religion of {s} is {v}.",
                              ((r"\breligio(?:n|us)\b|\bfaith\b|\bdevout\b|\bpractic|\bconvert|\bbeliever\b|"
                                r"\bfollower\b|\badherent\b"),
                               Before(r"\b(?:is|was|are|were|became)\s+an?\s+(?:\w+\s+)?"
                                      r"(?=(?:muslim|christian|hindu|buddhist|jew|jewish|catholic|atheist|sikh)\b)")),
                              "religion"),
    "_ is located in": F("location", "{s} is located in {v}.",
                         (LOCATED, r"\bin the (?:state|province|region|county|district) of\b", IS_IN,
                          Before(r"\b(?:located|situated)\s+in\s+" + PLACE_NOUN)), "country"),
    "The language of _ is": F("language", "{s} is in the {v} language.",
                              (LANGUAGE, r"\b(?:written|sung|performed|recorded|published|filmed)\s+in\b",
                               r"(?<=-)(?:speaking|language)\b"),
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
    "The country for sport played by _ is": F("country represented in sport", "{s} represents {v} in sport.",
                                              (r"\brepresent|\bnational (?:team|side|squad)\b|\bplay(?:s|ed)? for\b|"
                                               r"\binternationals?\b", NATIONALITY), "country"),
    "The continent of _ is": F("continent", "{s} is on the continent of {v}.", (r"\bcontinent\b", LOCATED, IS_IN)),
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
        "languages spoken", "{s} speaks {v}.", (r"\bspeak|\bspoke|\bfluent\b", LANGUAGE), "language"),
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
                                (r"\binstruments?\b|\bplay(?:s|ed|ing|er)?\b",), "instrument"),
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

# --- values and aliases ------------------------------------------------------------------------------------
# Values a model often names that the file lacks (its targets are single words: no United States, no football),
# added to every relation of their kind so that a wrong one is caught: "a citizen of the United States" for a
# French actor is contradicted, not unmapped. A relation of kind "place" (capital, residence, birthplace, ...)
# takes every place and country the file or this list knows.
EXTRA_VALUES = {
    "country": ("United States", "United Kingdom", "Soviet Union", "Saudi Arabia", "South Africa", "New Zealand",
                "South Korea", "North Korea", "Czech Republic", "Sri Lanka", "Costa Rica", "Dominican Republic",
                "El Salvador", "Ivory Coast", "Hong Kong", "Puerto Rico", "Roman Empire", "Ottoman Empire",
                "Byzantine Empire", "Austria-Hungary", "United Arab Emirates", "Bosnia and Herzegovina",
                "East Germany", "West Germany", "Burkina Faso", "Sierra Leone", "Great Britain"),
    "language": ("Swahili", "Amharic", "Hausa", "Yoruba", "Pashto", "Kurdish", "Estonian", "Slovak"),
    "religion": ("Protestantism", "Sikhism", "Shinto", "Taoism", "Jainism", "Zoroastrianism"),
    "sport": ("football", "ice hockey", "rugby", "boxing", "wrestling", "cycling", "rowing", "skiing", "judo",
              "bowling", "hockey", "softball", "squash", "polo"),
}
# country or region: its demonyms (the adjective first), read as a nationality only behind a NATIONALITY cue
_DEMONYMS = """Afghanistan:Afghan; Albania:Albanian; Algeria:Algerian; Angola:Angolan; Argentina:Argentine,Argentinian;
Armenia:Armenian; Australia:Australian; Austria:Austrian; Azerbaijan:Azerbaijani; Bahrain:Bahraini;
Bangladesh:Bangladeshi; Barbados:Barbadian; Bavaria:Bavarian; Belarus:Belarusian; Belgium:Belgian; Belize:Belizean;
Benin:Beninese; Bhutan:Bhutanese; Bohemia:Bohemian; Bolivia:Bolivian; Botswana:Botswanan; Brazil:Brazilian;
Brunei:Bruneian; Bulgaria:Bulgarian; Burundi:Burundian; Cambodia:Cambodian; Cameroon:Cameroonian; Canada:Canadian;
Chad:Chadian; Chile:Chilean; China:Chinese; Colombia:Colombian; Corsica:Corsican; Croatia:Croatian; Cuba:Cuban;
Cyprus:Cypriot; Czechoslovakia:Czechoslovak; Denmark:Danish,Dane; Ecuador:Ecuadorian; Egypt:Egyptian;
England:English,Englishman,Englishwoman; Eritrea:Eritrean; Estonia:Estonian; Ethiopia:Ethiopian; Fiji:Fijian;
Finland:Finnish,Finn;
France:French,Frenchman,Frenchwoman; Gabon:Gabonese; Georgia:Georgian; Germany:German; Ghana:Ghanaian; Greece:Greek;
Greenland:Greenlandic; Guatemala:Guatemalan; Guinea:Guinean; Guyana:Guyanese; Haiti:Haitian; Honduras:Honduran;
Hungary:Hungarian; Iceland:Icelandic,Icelander; India:Indian; Indonesia:Indonesian; Iran:Iranian,Persian;
Iraq:Iraqi; Ireland:Irish,Irishman; Israel:Israeli; Italy:Italian; Jamaica:Jamaican; Japan:Japanese; Jordan:Jordanian;
Kazakhstan:Kazakh,Kazakhstani; Kenya:Kenyan; Kosovo:Kosovar; Kuwait:Kuwaiti; Kyrgyzstan:Kyrgyz; Laos:Laotian;
Latvia:Latvian; Lebanon:Lebanese; Liberia:Liberian; Libya:Libyan; Lithuania:Lithuanian;
Luxembourg:Luxembourgish,Luxembourger; Macedonia:Macedonian; Madagascar:Malagasy; Malawi:Malawian;
Malaysia:Malaysian; Maldives:Maldivian; Mali:Malian; Malta:Maltese; Mauritius:Mauritian; Mexico:Mexican;
Moldova:Moldovan; Mongolia:Mongolian; Montenegro:Montenegrin; Morocco:Moroccan; Mozambique:Mozambican;
Myanmar:Burmese; Namibia:Namibian; Nepal:Nepali,Nepalese; Netherlands:Dutch,Dutchman; Nicaragua:Nicaraguan;
Niger:Nigerien;
Nigeria:Nigerian; Norway:Norwegian; Oman:Omani; Pakistan:Pakistani; Palestine:Palestinian; Panama:Panamanian;
Paraguay:Paraguayan; Peru:Peruvian; Philippines:Filipino,Philippine; Poland:Polish,Pole; Portugal:Portuguese;
Prussia:Prussian; Qatar:Qatari; Romania:Romanian; Russia:Russian; Rwanda:Rwandan; Samoa:Samoan;
Sardinia:Sardinian; Saxony:Saxon; Scotland:Scottish,Scot,Scotsman; Senegal:Senegalese; Serbia:Serbian,Serb;
Singapore:Singaporean; Slovakia:Slovak; Slovenia:Slovenian,Slovene; Somalia:Somali; Spain:Spanish,Spaniard;
Sudan:Sudanese; Sweden:Swedish,Swede; Switzerland:Swiss; Syria:Syrian; Taiwan:Taiwanese; Tajikistan:Tajik;
Tanzania:Tanzanian; Thailand:Thai; Tibet:Tibetan; Togo:Togolese; Tonga:Tongan; Tunisia:Tunisian;
Turkey:Turkish,Turk; Turkmenistan:Turkmen; Uganda:Ugandan; Ukraine:Ukrainian; Uzbekistan:Uzbek;
Vanuatu:Ni-Vanuatu; Venezuela:Venezuelan; Vietnam:Vietnamese; Wales:Welsh,Welshman; Yemen:Yemeni; Yugoslavia:Yugoslav;
Zambia:Zambian; Zimbabwe:Zimbabwean; United States:American; United Kingdom:British,Briton; Soviet Union:Soviet;
Saudi Arabia:Saudi; South Africa:South African; New Zealand:New Zealander; South Korea:South Korean,Korean;
North Korea:North Korean; Czech Republic:Czech; Sri Lanka:Sri Lankan; Costa Rica:Costa Rican;
Dominican Republic:Dominican; El Salvador:Salvadoran; Ivory Coast:Ivorian; Puerto Rico:Puerto Rican;
Roman Empire:Roman; Ottoman Empire:Ottoman; Byzantine Empire:Byzantine; Austria-Hungary:Austro-Hungarian;
United Arab Emirates:Emirati; Bosnia and Herzegovina:Bosnian; East Germany:East German;
West Germany:West German; Burkina Faso:Burkinabe; Sierra Leone:Sierra Leonean"""
DEMONYMS: dict[str, tuple] = {c.strip(): tuple(d.split(",")) for c, d in
                              (p.split(":") for p in _DEMONYMS.replace("\n", " ").split(";"))}
# other names of one value, by kind (the first name is the one the file uses)
ALIASES = {
    "country": {"Netherlands": ("Holland",), "Myanmar": ("Burma",),
                "United States": ("USA", "U.S.", "U.S.A.", "United States of America"),
                "United Kingdom": ("UK", "U.K."), "Soviet Union": ("USSR",), "Ivory Coast": ("Côte d'Ivoire",)},
    "language": {"Persian": ("Farsi",), "Slovene": ("Slovenian",), "Filipino": ("Tagalog",),
                 "Chinese": ("Mandarin",), "Spanish": ("Castilian",)},
    "religion": {"Islam": ("Muslim", "Muslims", "Islamic"), "Christianity": ("Christian", "Christians"),
                 "Hinduism": ("Hindu", "Hindus"), "Buddhism": ("Buddhist", "Buddhists"),
                 "Judaism": ("Jewish", "Jew", "Jews"), "Catholicism": ("Catholic", "Catholics"),
                 "atheist": ("atheism",), "Sikhism": ("Sikh",), "Protestantism": ("Protestant",),
                 "Shinto": ("Shintoism",)},
    "sport": {"football": ("soccer", "footballer"), "athletics": ("track and field",), "cricket": ("cricketer",),
              "tennis": ("tennis player",), "golf": ("golfer",), "swimming": ("swimmer",), "boxing": ("boxer",),
              "cycling": ("cyclist",), "wrestling": ("wrestler",), "fencing": ("fencer",), "rowing": ("rower",),
              "gymnastics": ("gymnast",), "archery": ("archer",)},
    "instrument": {"guitar": ("guitarist",), "piano": ("pianist",), "violin": ("violinist",), "drum": ("drummer",
                   "drums"), "flute": ("flautist", "flutist"), "harp": ("harpist",), "trumpet": ("trumpeter",),
                   "saxophone": ("saxophonist", "sax"), "organ": ("organist",), "banjo": ("banjoist",),
                   "accordion": ("accordionist",), "mandolin": ("mandolinist",), "fiddle": ("fiddler",),
                   "harmonica": ("harmonicist",), "synthesizer": ("synth",), "singing": ("singer", "sings"),
                   "voice": ("vocalist", "vocals")},
}
# a country and the countries or regions it held: naming one for the other is not a contradiction (a "British"
# citizen whose file says England; a "Soviet" one whose file says Russia), so that value is unverifiable
CONTAINS = {
    "United Kingdom": ("England", "Scotland", "Wales", "Great Britain"),
    "Great Britain": ("England", "Scotland", "Wales"),
    "Soviet Union": ("Russia", "Ukraine", "Belarus", "Georgia", "Armenia", "Azerbaijan", "Kazakhstan", "Uzbekistan",
                     "Kyrgyzstan", "Tajikistan", "Turkmenistan", "Estonia", "Latvia", "Lithuania", "Moldova"),
    "Yugoslavia": ("Serbia", "Croatia", "Slovenia", "Bosnia and Herzegovina", "Montenegro", "Macedonia", "Kosovo"),
    "Czechoslovakia": ("Czech Republic", "Slovakia", "Bohemia"),
    "Germany": ("Prussia", "Bavaria", "Saxony", "East Germany", "West Germany", "Hesse"),
    "Austria-Hungary": ("Austria", "Hungary", "Bohemia", "Croatia", "Slovakia", "Czech Republic"),
    "Ottoman Empire": ("Turkey",), "Roman Empire": ("Italy",), "China": ("Tibet", "Hong Kong", "Macau"),
    # a faith and its branches: "a Christian" whose file says Catholicism is not contradicted
    "Christianity": ("Catholicism", "Protestantism", "Anglicanism", "Eastern Orthodoxy", "Lutheranism",
                     "Calvinism", "Methodism"),
    "Islam": ("Sunni Islam", "Shia Islam"),
}
# "The country of <a person>": a subject that holds no country but a citizenship means the citizenship by it
# (``wikifacts_frames``)
FRAME_FALLBACK = {"The country of _ is": "The country of citizenship of _ is"}
_BY_DEMONYM = {d: c for c, ds in DEMONYMS.items() for d in ds}


def related(a: str, b: str) -> bool:
    """Whether one of two places held the other (``CONTAINS``)."""
    return b in CONTAINS.get(a, ()) or a in CONTAINS.get(b, ())


def canonical(value: str, kind: str) -> str:
    """The one name of a value under a relation of ``kind``: a demonym the file uses as a country is the country
    ("Afghan" -> "Afghanistan"), "Muslim" is "Islam"; every other value is itself."""
    if kind == "country":
        return _BY_DEMONYM.get(value, value)
    if kind == "religion":
        return {"Muslim": "Islam", "Christian": "Christianity", "Buddhist": "Buddhism"}.get(value, value)
    return value


def surface_forms(value: str, kind: str) -> list[tuple[str, bool]]:
    """Every way a sentence may name ``value`` (a canonical value) under a relation of ``kind``, each with whether
    it counts only behind an anchored cue (a demonym: "French" is France only in "a French actor")."""
    forms = [(value, False)] + [(a, False) for a in ALIASES.get(kind, {}).get(value, ())]
    if kind in ("country", "place"):
        forms += [(d, True) for d in DEMONYMS.get(value, ())]
        # "the French Republic", "Kingdom of Spain" (the Republic of China is Taiwan; no "Roman Republic" for an empire)
        if value in DEMONYMS and value != "China" and not value.endswith(("Empire", "Union")):
            forms += [(f"Republic of {value}", False), (f"Kingdom of {value}", False),
                      (f"{DEMONYMS[value][0]} Republic", False)]  # "the Icelandic Republic"
    if kind == "group" and value.endswith("s"):  # "Albanians": "of Albanian descent"
        forms.append((value[:-1], False))
    return list(dict.fromkeys(forms))


def demonym_pattern() -> str:
    """Every demonym, longest first, as one regular expression group."""
    return "(?:" + "|".join(sorted({re.escape(d) for ds in DEMONYMS.values() for d in ds}, key=len, reverse=True)) + ")"


def cue_patterns() -> list[tuple[str, str, bool, bool, int]]:
    """(pattern, relation, anchored, weak, rank) for every cue of the table; rank 0 is a relation's own first cue
    (where one phrase cues several relations, "located in", it goes first to the relation it names first)."""
    out = []
    for rel, f in FIELDS.items():
        for i, c in enumerate(f.cues):
            pat = c if isinstance(c, str) else c.pattern.replace("<DEMONYM>", demonym_pattern())
            out.append((pat, rel, isinstance(c, Before), isinstance(c, Weak), i))
    return out


def label_of(relation: str) -> str:
    return FIELDS[relation].label


def relation_of_label(label: str) -> str | None:
    """The relation a field name (or a relation name) stands for; None if neither."""
    if label in FIELDS:
        return label
    return next((r for r, f in FIELDS.items() if f.label == label), None)
