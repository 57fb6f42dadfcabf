"""The shipping label (LOG-3, issue 11): a real one-page 100 x 150 mm PDF whose barcode and QR code scan back to
the waybill, with the addresses, order id, courier and service, and the COD amount only for cash on delivery.
The page is rendered to pixels and read with a barcode reader, as a courier's scanner reads the printed label."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from emulator.template import ROOT
from patungan.core.errors import Conflict
from patungan.fulfilment.label import LabelData, LabelParty, render_label
from tests.support.label import page_of, scanned, text_lines

POINTS_PER_MM = 72 / 25.4
SENDER = LabelParty(
    name="Gudang Patungan Cikarang",
    phone="+6281234567890",
    address_lines=("Jl. Industri Raya No. 5", "Kawasan MM2100 Blok B"),
    city="Bekasi",
    province="Jawa Barat",
    postal_code="17520",
)
RECIPIENT = LabelParty(
    name="Siti Rahmawati",
    phone="+6281298765432",
    address_lines=("Jl. Melati No. 12 RT 03/RW 05",),
    city="Jakarta Selatan",
    province="DKI Jakarta",
    postal_code="12430",
)
LABEL = LabelData(
    shipment_id="shp_01JABCDEF",
    order_id="ord_01JXYZ123",
    courier="jne",
    service="reg",
    waybill_id="JNE0123456789",
    sender=SENDER,
    recipient=RECIPIENT,
    cod_amount=None,
    weight_grams=1250,
    items_count=3,
)


def test_the_label_is_one_page_of_100_by_150_mm():
    width, height = page_of(render_label(LABEL)).get_size()

    assert width == pytest.approx(100 * POINTS_PER_MM, abs=0.5)  # 283.46 pt
    assert height == pytest.approx(150 * POINTS_PER_MM, abs=0.5)  # 425.2 pt


def test_its_code128_barcode_and_qr_code_scan_back_to_the_waybill():
    assert scanned(render_label(LABEL)) == {"Code128": "JNE0123456789", "QRCode": "JNE0123456789"}


def test_the_label_reads_as_the_golden_text_without_a_cod_line_for_a_prepaid_order():
    assert text_lines(render_label(LABEL)) == [
        "JNE REG NON-COD",
        "JNE0123456789",
        "PENERIMA / TO",
        "Siti Rahmawati",
        "+6281298765432",
        "Jl. Melati No. 12 RT 03/RW 05",
        "Jakarta Selatan, DKI Jakarta",
        "12430",
        "PENGIRIM / FROM",
        "Gudang Patungan Cikarang",
        "+6281234567890",
        "Jl. Industri Raya No. 5",
        "Kawasan MM2100 Blok B",
        "Bekasi, Jawa Barat",
        "17520",
        "Order: ord_01JXYZ123",
        "Shipment: shp_01JABCDEF",
        "Weight: 1,25 kg",
        "Items: 3",
    ]


def test_a_cash_on_delivery_label_shows_the_amount_to_collect_in_rupiah():
    """CHK-9: the courier collects the order total; the label says how much, as Indonesians write rupiah."""
    lines = text_lines(render_label(dataclasses.replace(LABEL, cod_amount=1_250_500)))

    assert lines[0] == "JNE REG COD Rp1.250.500"
    assert "NON-COD" not in " ".join(lines)


def test_the_same_data_renders_the_same_bytes():
    """Deterministic (no creation date or random document id): a reprinted label is the same file."""
    assert render_label(LABEL) == render_label(dataclasses.replace(LABEL))


def test_long_names_and_addresses_are_cut_to_their_space_and_the_codes_still_scan():
    long_recipient = dataclasses.replace(
        RECIPIENT,
        name="Raden Ajeng Kartika Sari Dewi Puspitasari Wulandari Kusumaningrum Hadiningrat",
        address_lines=("Perumahan Taman Kebon Jeruk Indah Permai Blok Z-99 No. 123 " * 4, "Gang Mawar " * 10),
        city="Kota Administrasi Jakarta Barat",
    )
    long_sender = dataclasses.replace(SENDER, address_lines=("Kompleks Pergudangan Cikarang Dry Port " * 5,))
    pdf = render_label(dataclasses.replace(LABEL, recipient=long_recipient, sender=long_sender, cod_amount=99_000))

    lines = text_lines(pdf)
    assert scanned(pdf) == {"Code128": "JNE0123456789", "QRCode": "JNE0123456789"}
    recipient_block = lines[lines.index("PENERIMA / TO") + 1 : lines.index("PENGIRIM / FROM")]
    assert recipient_block[0].startswith("Raden Ajeng") and recipient_block[0].endswith("…")
    # Name, phone, three street lines (the last ends in …), then city and postal code, never cut off.
    assert len(recipient_block) == 7
    assert recipient_block[4].endswith("…")
    assert recipient_block[-2:] == ["Kota Administrasi Jakarta Barat, DKI Jakarta", "12430"]
    sender_block = lines[lines.index("PENGIRIM / FROM") + 1 : lines.index("Order: ord_01JXYZ123")]
    assert len(sender_block) == 6
    assert sender_block[3].endswith("…")
    assert sender_block[-2:] == ["Bekasi, Jawa Barat", "17520"]


def test_characters_the_label_fonts_lack_print_as_question_marks_not_as_nothing():
    """The label's PDF base fonts encode only Western (cp1252) text: an accent they have is kept (Zoë), one
    they lack loses its mark (Ş → S), and a script they lack (Chinese) prints as ? so the courier sees that
    something is missing, rather than a blank or a crash."""
    recipient = dataclasses.replace(RECIPIENT, name="Zoë Şahin 王芳", address_lines=("Jl. Kebon Jeruk №5 — ☎",))

    pdf = render_label(dataclasses.replace(LABEL, recipient=recipient))

    lines = text_lines(pdf)
    assert "Zoë Sahin ??" in lines
    assert "Jl. Kebon Jeruk No5 — ?" in lines
    assert scanned(pdf) == {"Code128": "JNE0123456789", "QRCode": "JNE0123456789"}


def test_importing_the_label_module_does_not_import_reportlab():
    """Cold start (issue 8): reportlab loads when a label is drawn, not in every handler that imports fulfilment."""
    completed = subprocess.run(
        [sys.executable, "-c", "import json, sys, patungan.fulfilment.label; print(json.dumps(sorted(sys.modules)))"],
        env={"PYTHONPATH": str(ROOT / "layers" / "shared")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert not any(module.split(".")[0] in {"reportlab", "PIL"} for module in json.loads(completed.stdout))


@pytest.mark.parametrize("waybill_id", ["JNE\u2013123", "JNE 123\n", "", "   "])
def test_a_waybill_the_barcode_cannot_carry_is_refused_not_printed_as_another_waybill(waybill_id):
    """Code128 is ASCII: drawn anyway, "JNE<en dash>123" scanned as "JNE123", another parcel's waybill."""
    with pytest.raises(Conflict) as refused:
        render_label(dataclasses.replace(LABEL, waybill_id=waybill_id))

    assert refused.value.code == "waybill_unprintable"
