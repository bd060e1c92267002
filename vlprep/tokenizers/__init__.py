"""Things that learn a discrete vocabulary: subword vocabularies for text (`subword`) and visual words for
video features (`visual`). Not named `tokenizers` at the top level so that Hugging Face `tokenizers` is not
shadowed."""
