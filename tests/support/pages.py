"""The pages the tests and the bench open: demo articles from content/ and the site's own pages."""

from __future__ import annotations

HARROWMERE = "/articles/harrowmere-tidal-lagoon-switches-on"
# The demo stories that embed the second video host, one per edition.
LANTERNS = "/articles/ostervale-lantern-boats-return"
LANTERNS_DE = "/de/articles/laternenboote-kehren-nach-ostervale-zurueck"
LANTERNS_FR = "/fr/articles/ostervale-les-bateaux-lanternes-reviennent"
KESSLING = "/articles/kessling-morvelle-night-train-returns"
NEWSROOMS = "/articles/newsrooms-rethink-reader-privacy-and-consent"
MISSING_ARTICLE = "/articles/missing"

# The German and French demo articles, each at its own edition's address.
NACHTZUG = "/de/articles/nachtzug-nach-morvelle-ausgebucht"
HALDBRUECK = "/de/articles/haldbrueck-heizt-mit-abwaerme-der-brauerei"
LOVE_VALLEY = "/fr/articles/vallee-de-la-love-maraichers-eau-de-pluie"
MORVELLE_STATION = "/fr/articles/morvelle-la-gare-retrouve-ses-voyageurs"

# The article most tests open: it has tags, related stories and a provider's embed.
ARTICLE = HARROWMERE

# Every kind of HTML page a reader meets: the front page, a story, the preferences page,
# the cookie policy and the site's own "not found".
HTML_PAGES = ("/", ARTICLE, "/consent", "/cookie-policy", MISSING_ARTICLE)
