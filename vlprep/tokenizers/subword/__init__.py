"""Subword vocabularies for the text side: BPE and unigram with sentencepiece, and WordPiece with our own
trainer (likelihood criterion) and a Python encoder that matches Hugging Face's."""

from vlprep.tokenizers.subword.bert_pretokenizer import BertPreTokenizer
from vlprep.tokenizers.subword.build import VocabSummary, build_sentencepiece, build_wordpiece
from vlprep.tokenizers.subword.corpora import CorpusStats, iter_lines, iter_text_blocks
from vlprep.tokenizers.subword.word_counts import count_words
from vlprep.tokenizers.subword.wordpiece_tokenizer import WordPieceTokenizer
from vlprep.tokenizers.subword.wordpiece_trainer import WordPieceVocab, train_wordpiece

__all__ = [
    "BertPreTokenizer",
    "CorpusStats",
    "VocabSummary",
    "WordPieceTokenizer",
    "WordPieceVocab",
    "build_sentencepiece",
    "build_wordpiece",
    "count_words",
    "iter_lines",
    "iter_text_blocks",
    "train_wordpiece",
]
