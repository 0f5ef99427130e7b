"""A DICOM SEG or RTSTRUCT of a source series, rewritten to reference the derived (protected) series instead.

A PACS attaches a segmentation to the series its references name: a SEG copied unchanged would sit on the
unprotected original. Every Referenced SOP Instance UID of a source instance (a SEG's Referenced Series and
per-frame Source Image items, an RTSTRUCT's Contour Image items) becomes the derived instance's, every Series
Instance UID inside a reference that names the source series becomes the derived series', and the object itself gets
new SOP Instance and Series Instance UIDs (its content changed, so it is a new instance). The Frame of Reference
stays: the derived series keeps its source's (writer.py). Everything else is kept element for element.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import InputError
from ..transaction import OutputTransaction
from . import save_dataset
from .writer import DerivedSeries, suffixed_description


def _repoint(dataset, derived: DerivedSeries) -> int:
    """Replace, inside every sequence of `dataset`, the source's instance and series UIDs; returns how many."""
    replaced = 0
    for element in dataset:
        if element.VR != "SQ":
            continue
        for item in element.value:
            uid = str(item.get("ReferencedSOPInstanceUID", ""))
            if uid in derived.instances:
                item.ReferencedSOPInstanceUID = derived.instances[uid]
                replaced += 1
            if str(item.get("SeriesInstanceUID", "")) == derived.source_series_uid:
                item.SeriesInstanceUID = derived.series_uid
                replaced += 1
            replaced += _repoint(item, derived)
    return replaced


def rereferenced_label(source: Path, derived: DerivedSeries):
    """The SEG or RTSTRUCT at `source` (not modified), pointing at the derived series, as a new instance."""
    from pydicom import dcmread
    from pydicom.uid import generate_uid

    dataset = dcmread(source)
    if not _repoint(dataset, derived):
        raise InputError(f"the DICOM label {str(source)!r} references no image of the series it labels; it cannot be "
                         "pointed at the protected series")
    dataset.SOPInstanceUID = generate_uid()
    if getattr(dataset, "file_meta", None) is not None:
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SeriesDescription = suffixed_description(dataset)
    return dataset


def stage_rereferenced_label(transaction: OutputTransaction, source: Path, target: Path,
                             derived: DerivedSeries) -> None:
    """Write the label at `source`, re-pointed at the derived series, as `target` of the transaction."""
    save_dataset(rereferenced_label(source, derived), transaction.stage(target))
