"""The consent model: the registry, the reader's choice and what follows from it, as values that
know nothing of a request, a database or a page."""
