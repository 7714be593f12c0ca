"""The values of the Wikidata long-form benchmark's lexicon (``wikifacts_lexicon``): values a model often names that
the file lacks, demonyms, other names of one value, the places and faiths that hold others, continents' adjectives;
and how a sentence may name a value (``surface_forms``), its one name (``canonical``)."""
from __future__ import annotations

import re

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
              "bowling", "hockey", "softball", "squash", "polo", "American football"),
    "continent": ("North America", "South America", "Eurasia"),
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
                 "Chinese": ("Mandarin",), "Spanish": ("Castilian",), "Malay": ("Malaysian",)},
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
# a continent's adjective, read as the continent only behind its cue ("a European city")
CONTINENTAL = {"Europe": ("European",), "Asia": ("Asian",), "Africa": ("African",), "Oceania": ("Oceanian",),
               "North America": ("North American",), "South America": ("South American",)}
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
    if kind == "continent":
        forms += [(a, True) for a in CONTINENTAL.get(value, ())]
    # a name in title case, as a heading or a team writes it: "American Football" for "American football"
    forms += [(" ".join(w[:1].upper() + w[1:] for w in f.split()), a) for f, a in forms
              if " " in f and f[:1].isupper() and any(w[:1].islower() for w in f.split()[1:])]
    return list(dict.fromkeys(forms))


def demonym_pattern() -> str:
    """Every demonym, longest first, as one regular expression group."""
    return "(?:" + "|".join(sorted({re.escape(d) for ds in DEMONYMS.values() for d in ds}, key=len, reverse=True)) + ")"
