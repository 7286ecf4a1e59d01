"""The one table writer of the summary and the report: Markdown pipe tables and CSV."""

import csv
import io

from orchestrator.table_format import csv_text, markdown


def test_markdown_has_a_line_per_row_and_a_cell_with_a_pipe_does_not_split_its_row():
    text = markdown(["configuration", "KNN"], [["simclr τ=0.5", "22.0 ± 2.0"], ["a|b", "1"]])
    lines = text.splitlines()
    assert lines[:3] == ["| configuration | KNN |", "|---|---|", "| simclr τ=0.5 | 22.0 ± 2.0 |"]
    assert lines[3] == "| a\\|b | 1 |" and len(lines) == 4


def test_csv_reads_back_cell_for_cell_with_commas_and_quotes():
    rows = [["simclr, τ=0.5", 'say "hi"', ""], ["dino", "0.5", "x"]]
    assert list(csv.reader(io.StringIO(csv_text(["a", "b", "c"], rows)))) == [["a", "b", "c"], *rows]
