"""Articles: the import, the pages a reader opens (story, sections, tags, search), what
surrounds a story, the feeds and metadata machines read, and the bounds on route values."""
