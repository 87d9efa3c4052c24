"""The proof of consent: the records, their keyed hash chain, the proof keys that sign it and
the checks that verify it."""
