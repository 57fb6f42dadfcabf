"""The shipping label (LOG-3): how long ``render_label`` takes to draw one 100 x 150 mm PDF, warm, and what the
first label costs (reportlab's imports, which the first label request of a Lambda container pays)."""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass

from patungan.fulfilment.label import LabelData, LabelParty, render_label

RUNS = 50
SAMPLE = LabelData(
    shipment_id="shp_01JBENCHMARK0000000000000",
    order_id="ord_01JBENCHMARK0000000000000",
    courier="jne",
    service="reg",
    waybill_id="JNE0123456789012",
    sender=LabelParty(
        "Gudang Patungan Cikarang",
        "+6281234567890",
        ("Jl. Industri Raya No. 5", "Kawasan MM2100 Blok B"),
        "Bekasi",
        "Jawa Barat",
        "17520",
    ),
    recipient=LabelParty(
        "Siti Rahmawati",
        "+6281298765432",
        ("Jl. Melati No. 12 RT 03/RW 05, Kebayoran Baru",),
        "Jakarta Selatan",
        "DKI Jakarta",
        "12430",
    ),
    cod_amount=1_250_000,
    weight_grams=1250,
    items_count=3,
)


@dataclass(frozen=True)
class LabelRun:
    runs: int
    median_seconds: float
    first_label_seconds: float
    first_label_imported_reportlab: bool
    pdf_bytes: int


def measure_label() -> LabelRun:
    """CPU time (other processes on the machine move it less than wall time) of the first label, then of warm ones."""
    cold = "reportlab" not in sys.modules
    started = time.process_time()
    pdf = render_label(SAMPLE)
    first = time.process_time() - started
    durations = []
    for _ in range(RUNS):
        started = time.process_time()
        render_label(SAMPLE)
        durations.append(time.process_time() - started)
    return LabelRun(RUNS, statistics.median(durations), first, cold, len(pdf))


def label_report(run: LabelRun) -> list[str]:
    return [
        f"label: median={run.median_seconds * 1000:.1f} ms over {run.runs} renders (warm), "
        f"first label={run.first_label_seconds * 1000:.0f} ms"
        f"{' (reportlab imported then)' if run.first_label_imported_reportlab else ''}, "
        f"PDF {run.pdf_bytes} bytes",
    ]
