"""Visual tokens by hierarchical k-means (VideoBERT): a tree of `branching`-way k-means, `levels` deep, whose
leaf path read as a base-`branching` number is the token id."""

from vlprep.tokenizers.visual.codebook import Codebook, CodebookError
from vlprep.tokenizers.visual.fit import fit

__all__ = ["Codebook", "CodebookError", "fit"]
