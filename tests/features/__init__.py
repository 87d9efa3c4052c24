"""The site's optional features (page views and the other endpoints a category unlocks) and
third-party embeds that load nothing until the reader allows their provider."""
