"""Ray jobs that run the extractors over corpora into feature stores.

`runner` is the shared core (listing, resume, decode tasks, model actors, store writing, progress);
`regions` and `video` are the two jobs built on it."""
