"""The printable shipping label (LOG-3): one 100 x 150 mm PDF page, the thermal-printer label size couriers in
Indonesia take, with the sender, the recipient, the order id, the courier and service, a Code128 barcode and a QR
code of the waybill and, for cash on delivery, the amount the courier collects."""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from patungan.core.errors import Conflict
from patungan.notifications.messages import format_rupiah

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas

MM = 72 / 25.4  # points per millimetre
PAGE_WIDTH = 100 * MM
PAGE_HEIGHT = 150 * MM
MARGIN = 4 * MM
# The base-14 PDF fonts need no embedding (a small, fast PDF) but encode only WinAnsi (cp1252).
FONT = "Helvetica"
BOLD = "Helvetica-Bold"
FONT_ENCODING = "cp1252"
UNPRINTABLE = "?"
BARCODE_QUIET_ZONE = 6 * MM
# Code128 encodes ASCII only: reportlab silently drops anything else, and the bars would scan as another waybill.
_CODE128_PRINTABLE = frozenset(map(chr, range(0x20, 0x7F)))


@dataclass(frozen=True)
class LabelParty:
    """Who sends or receives the parcel, as the courier reads it on the label."""

    name: str
    phone: str
    address_lines: tuple[str, ...]
    city: str
    province: str
    postal_code: str


@dataclass(frozen=True)
class LabelData:
    shipment_id: str
    order_id: str
    courier: str
    service: str
    waybill_id: str
    sender: LabelParty
    recipient: LabelParty
    cod_amount: int | None
    weight_grams: int
    items_count: int


def printable(text: str) -> str:
    """``text`` in the labels' fonts: a letter whose accent the fonts lack loses the accent (Ş becomes S), and a
    character with no such fallback (王, Ł) prints as ``?``: a missing glyph would print as nothing, and the
    courier would not see that part of the name is missing."""
    characters = []
    for character in text:
        if _encodable(character):
            characters.append(character)
            continue
        folded = "".join(c for c in unicodedata.normalize("NFKD", character) if not unicodedata.combining(c))
        characters.append(folded if folded and all(_encodable(c) for c in folded) else UNPRINTABLE)
    return "".join(characters)


def _encodable(character: str) -> bool:
    try:
        character.encode(FONT_ENCODING)
    except UnicodeEncodeError:
        return False
    return character.isprintable()


def weight_text(grams: int) -> str:
    """1250 → ``1,25 kg``: Indonesian decimal comma."""
    return f"{grams / 1000:.2f} kg".replace(".", ",")


def render_label(data: LabelData) -> bytes:
    """The label as PDF bytes. Deterministic: the same data gives the same bytes (no creation date, no random
    document id), so a label printed twice is the same label. A waybill its barcode cannot carry is refused (409)
    rather than printed as bars that scan as another parcel's waybill."""
    if not data.waybill_id.strip() or not set(data.waybill_id) <= _CODE128_PRINTABLE:
        raise Conflict(f"waybill {data.waybill_id!r} cannot be printed as a barcode", code="waybill_unprintable")
    # Imported here: reportlab's imports cost tens of ms (make bench --only label), and only the label route draws.
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(PAGE_WIDTH, PAGE_HEIGHT), invariant=1, pageCompression=1)
    canvas.setTitle(f"Label {data.waybill_id}")
    canvas.setAuthor("Patungan")
    _Label(canvas, data).draw()
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


class _Label:
    """Draws from the top of the page down; ``self.top`` is where the next block starts."""

    def __init__(self, canvas: Canvas, data: LabelData) -> None:
        self.canvas = canvas
        self.data = data
        self.top = PAGE_HEIGHT - MARGIN
        self.width = PAGE_WIDTH - 2 * MARGIN

    def draw(self) -> None:
        self._header()
        self._barcode()
        self._party("PENERIMA / TO", self.data.recipient, name_size=11, max_street_lines=3)
        self._party("PENGIRIM / FROM", self.data.sender, name_size=9, max_street_lines=2)
        self._footer()

    def _header(self) -> None:
        height = 11 * MM
        bottom = self.top - height
        self.canvas.setFont(BOLD, 16)
        courier = printable(f"{self.data.courier.upper()} {self.data.service.upper()}")
        self.canvas.drawString(MARGIN, bottom + 3 * MM, _fit(courier, BOLD, 16, self.width * 0.5))
        if self.data.cod_amount is not None:
            # Black box, white text: the courier must not miss that cash is to be collected.
            box_width = self.width * 0.48
            self.canvas.rect(PAGE_WIDTH - MARGIN - box_width, bottom, box_width, height, stroke=0, fill=1)
            self.canvas.setFillGray(1)
            self.canvas.setFont(BOLD, 13)
            self.canvas.drawCentredString(
                PAGE_WIDTH - MARGIN - box_width / 2, bottom + 3 * MM, f"COD {format_rupiah(self.data.cod_amount)}"
            )
            self.canvas.setFillGray(0)
        else:
            self.canvas.setFont(BOLD, 12)
            self.canvas.drawRightString(PAGE_WIDTH - MARGIN, bottom + 3 * MM, "NON-COD")
        self.top = bottom - 2 * MM
        self._rule()

    def _barcode(self) -> None:
        from reportlab.graphics.barcode.code128 import Code128

        bar_height = 18 * MM
        # The bars as wide as fit between the quiet zones a scanner needs, and no wider than it reads well.
        modules = Code128(self.data.waybill_id, barWidth=1, quiet=0).width
        bar_width = min((self.width - 2 * BARCODE_QUIET_ZONE) / modules, 0.5 * MM)
        barcode = Code128(
            self.data.waybill_id,
            barWidth=bar_width,
            barHeight=bar_height,
            lquiet=BARCODE_QUIET_ZONE,
            rquiet=BARCODE_QUIET_ZONE,
        )
        barcode.drawOn(self.canvas, MARGIN + (self.width - barcode.width) / 2, self.top - bar_height)
        self.canvas.setFont(BOLD, 12)
        self.canvas.drawCentredString(PAGE_WIDTH / 2, self.top - bar_height - 5 * MM, printable(self.data.waybill_id))
        self.top -= bar_height + 8 * MM
        self._rule()

    def _party(self, heading: str, party: LabelParty, name_size: float, max_street_lines: int) -> None:
        self.canvas.setFont(FONT, 7)
        self.top -= 3 * MM
        self.canvas.drawString(MARGIN, self.top, heading)
        self.top -= name_size + 2
        self.canvas.setFont(BOLD, name_size)
        self.canvas.drawString(MARGIN, self.top, _fit(printable(party.name), BOLD, name_size, self.width))
        size = name_size - 1
        self.canvas.setFont(FONT, size)
        self.top -= size + 2
        self.canvas.drawString(MARGIN, self.top, _fit(printable(party.phone), FONT, size, self.width))
        # The street wraps into the lines it has; the city and province always show (the courier sorts by them).
        street = _wrap([printable(line) for line in party.address_lines], FONT, size, self.width, max_street_lines)
        for line in [*street, _fit(printable(f"{party.city}, {party.province}"), FONT, size, self.width)]:
            self.top -= size + 1.5
            self.canvas.drawString(MARGIN, self.top, line)
        self.top -= size + 2
        self.canvas.setFont(BOLD, size + 1)
        self.canvas.drawString(MARGIN, self.top, printable(party.postal_code))
        self.top -= 2 * MM
        self._rule()

    def _footer(self) -> None:
        """The order's details on the left, the waybill's QR code on the right, at the foot of the page."""
        from reportlab.graphics import renderPDF
        from reportlab.graphics.barcode.qr import QrCodeWidget
        from reportlab.graphics.shapes import Drawing

        size = min(self.top - MARGIN, 30 * MM)
        widget = QrCodeWidget(self.data.waybill_id, barLevel="M")
        left, bottom, right, top = widget.getBounds()
        drawing = Drawing(size, size, transform=[size / (right - left), 0, 0, size / (top - bottom), 0, 0])
        drawing.add(widget)
        renderPDF.draw(drawing, self.canvas, PAGE_WIDTH - MARGIN - size, MARGIN)
        lines = [
            f"Order: {self.data.order_id}",
            f"Shipment: {self.data.shipment_id}",
            f"Weight: {weight_text(self.data.weight_grams)}",
            f"Items: {self.data.items_count}",
        ]
        text_width = self.width - size - 2 * MM
        y = MARGIN + size - 8
        self.canvas.setFont(FONT, 8)
        for line in lines:
            self.canvas.drawString(MARGIN, y, _fit(printable(line), FONT, 8, text_width))
            y -= 11

    def _rule(self) -> None:
        self.canvas.setLineWidth(0.8)
        self.canvas.line(MARGIN, self.top, PAGE_WIDTH - MARGIN, self.top)


def _wrap(lines: list[str], font: str, size: float, width: float, max_lines: int) -> list[str]:
    """``lines`` wrapped to ``width``, at most ``max_lines`` of them: the last shown ends in … when more is cut,
    so a long address never runs into the codes below it."""
    from reportlab.lib.utils import simpleSplit

    wrapped = [part for line in lines for part in simpleSplit(line, font, size, width) or [""]]
    if len(wrapped) <= max_lines:
        return wrapped
    return [*wrapped[: max_lines - 1], _fit(wrapped[max_lines - 1] + " …", font, size, width)]


def _fit(text: str, font: str, size: float, width: float) -> str:
    """``text`` cut to ``width`` (ending in …) when it is wider."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…"
