"""Reading a printed label back as a person and a scanner would: its one page, its text lines, its codes."""

from __future__ import annotations

import pypdfium2
import zxingcpp


def page_of(pdf: bytes) -> pypdfium2.PdfPage:
    document = pypdfium2.PdfDocument(pdf)
    assert len(document) == 1
    return document[0]


def text_lines(pdf: bytes) -> list[str]:
    return page_of(pdf).get_textpage().get_text_bounded().splitlines()


def scanned(pdf: bytes) -> dict[str, str]:
    """What a scanner reads off the printed label: each code's format and text."""
    image = page_of(pdf).render(scale=4).to_pil()
    return {code.format.name: code.text for code in zxingcpp.read_barcodes(image)}
