"""Readers and writers of the field's files: pairs and documents (JSONL, JSON, TSV, text), TREC runs and qrels,
BEIR corpora, queries and qrels. Nothing here imports torch."""

from qrr.formats.lines import STDIN, decode_lines, label, path_of, read_lines
from qrr.formats.records import (
    DOC_FORMATS,
    PAIR_FORMATS,
    ROW_FORMATS,
    DocRecord,
    PairRecord,
    is_id_field,
    json_type,
    parse_pairs,
    read_documents,
    read_pairs,
    stdin_once,
)
from qrr.formats.rows import SCORE_FIELDS, RowWriter, check_fields, merged_order, rank_fields, rank_rows, score_rows
from qrr.formats.trec import (
    RUN_FORMATS,
    TAG,
    BeirFolder,
    Qrels,
    Run,
    format_results,
    output_format,
    read_corpus,
    read_qrels,
    read_queries,
    read_run,
    result_line,
)

__all__ = [
    "DOC_FORMATS", "PAIR_FORMATS", "ROW_FORMATS", "RUN_FORMATS", "SCORE_FIELDS", "STDIN", "TAG", "BeirFolder",
    "DocRecord", "PairRecord", "Qrels", "RowWriter", "Run", "check_fields", "decode_lines", "format_results",
    "is_id_field", "json_type", "label", "merged_order", "output_format", "parse_pairs", "path_of", "rank_fields",
    "rank_rows", "read_corpus", "read_documents", "read_lines", "read_pairs", "read_qrels", "read_queries", "read_run",
    "result_line", "score_rows", "stdin_once",
]  # fmt: skip
