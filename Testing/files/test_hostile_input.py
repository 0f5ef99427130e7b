"""Hostile and absurd input: code in a profile, absurd profile settings and weights, headers that lie about their
size, volumes too large for the memory, and label maps with absurd values."""

import gzip
import json
import os
import pickle
import re
import socketserver
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import slicerio
import torch

from UMedProtectLib import ProtectSettings, protect
from UMedProtectLib.cli.main import main
from UMedProtectLib.errors import InputError
from UMedProtectLib.files.image_io import read_image
from UMedProtectLib.files.label_io import read_label
from UMedProtectLib.method.profile import FORMAT, Profile, load_profile, make_perturbation, save_profile

from conftest import blob_study, sha256, sitk_image
from dicom_testing import ct_study, new_study, write_ct_series, write_rtstruct, write_seg

FAST = ProtectSettings(iterations=0, device="cpu")


class Payload:
    """Unpickling this runs code: it creates the file named at pickling time."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def study_files(tmp_path):
    image, label = blob_study((6, 40, 48))
    paths = tmp_path / "study.nrrd", tmp_path / "study_label.nrrd"
    sitk.WriteImage(sitk_image(image), str(paths[0]), True)
    sitk.WriteImage(sitk_image(label), str(paths[1]), True)
    return paths


def protect_with_profile(paths, profile, out_folder, capsys, *extra):
    """The command line in this process with --profile; returns (exit code, stderr)."""
    code = main(["protect", "--image", str(paths[0]), "--label", str(paths[1]), "--output",
                 str(out_folder / "o.nrrd"), "--profile", str(profile), "--progress", "none", *map(str, extra)])
    return code, capsys.readouterr().err


def test_a_profile_with_code_is_refused_and_the_code_never_runs(tmp_path, study_files, capsys):
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Payload(tmp_path / "control")))  # the payload is real: unpickled, it runs
    assert (tmp_path / "control").exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"format": FORMAT, "settings": {}, "state": Payload(marker)}))
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"format": FORMAT, "settings": {}, "state": {}, "info": Payload(marker)}, wrapped)
    out = tmp_path / "out"
    out.mkdir()
    for profile in (raw, wrapped):
        code, err = protect_with_profile(study_files, profile, out, capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "not a readable UMedProtect profile" in err
    assert not marker.exists() and os.listdir(out) == []


def write_profile(path, settings=None, state=None, **setting_changes):
    """A profile file with these settings (as a dict, so that absurd values get through) and weights."""
    valid = ProtectSettings()
    data = dict(valid.to_dict(), **setting_changes)
    if state is None:
        state = make_perturbation(valid).state_dict()
    torch.save({"format": FORMAT, "settings": data, "info": {}, "state": state}, path)
    return path


@pytest.mark.parametrize("changes, message", [
    ({"generator_width": 3000}, "generator width 3000"),
    ({"band_width": 30}, "band width 30"),
    ({"batch_size": 10**9}, "batch size"),
    ({"patch_size": "64"}, "patch size"),
    ({"learning_rate": float("nan")}, "learning rate"),
    ({"percentiles": [50.0]}, "settings"),
])
def test_absurd_profile_settings_are_refused_before_anything_is_built(tmp_path, changes, message):
    profile = write_profile(tmp_path / "p.pt", **changes)
    with pytest.raises(InputError, match=message) as caught:
        load_profile(profile)
    assert "\n" not in str(caught.value)


def test_profile_weights_of_the_wrong_shape_or_not_finite_are_refused(tmp_path):
    state = make_perturbation(ProtectSettings()).state_dict()
    name = next(iter(state))
    grown = dict(state, **{name: torch.zeros(4096, *state[name].shape[1:])})
    with pytest.raises(InputError, match="do not fit"):
        load_profile(write_profile(tmp_path / "a.pt", state=grown))
    missing = {k: v for k, v in state.items() if k != name}
    with pytest.raises(InputError, match="do not fit"):
        load_profile(write_profile(tmp_path / "b.pt", state=missing))
    poisoned = dict(state, **{name: torch.full_like(state[name], float("nan"))})
    with pytest.raises(InputError, match="NaN"):
        load_profile(write_profile(tmp_path / "c.pt", state=poisoned))
    assert isinstance(load_profile(write_profile(tmp_path / "d.pt", state=state)), Profile)


def test_a_profile_with_a_visible_budget_is_applied_with_a_warning(tmp_path, study_files, capsys):
    settings = ProtectSettings(epsilon=1.0, band_width=16)
    profile = tmp_path / "loud.pt"
    save_profile(Profile.from_perturbation(make_perturbation(settings), settings, {}), profile)
    code, err = protect_with_profile(study_files, profile, tmp_path, capsys, "--report", tmp_path / "r.json",
                                     "--iterations", "7")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert any("above 16/255" in w for w in report["warnings"]), report["warnings"]
    # Nothing is fitted: the report records the profile's schedule, not the one given, and says so.
    assert report["settings"]["iterations"] is None
    assert "iterations 7 not used: a profile is applied without fitting" in report["warnings"]


def test_headers_that_claim_a_huge_size_are_refused_without_allocating(tmp_path):
    sitk.WriteImage(sitk_image(np.zeros((2, 4, 4), np.int16)), str(tmp_path / "small.nrrd"))
    raw = tmp_path / "raw.nrrd"
    raw.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 100000 100000 100000\nendian: little\n"
                    b"encoding: raw\n\n" + bytes(100))
    packed = tmp_path / "packed.nrrd"
    packed.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 3000 3000 3000\nendian: little\n"
                       b"encoding: gzip\n\n" + gzip.compress(bytes(1000)))
    image = nibabel.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4))
    image.header.set_data_shape((30000, 30000, 30000))
    nifti = tmp_path / "huge.nii"
    nifti.write_bytes(image.header.binaryblock + bytes(132))
    for path in (raw, packed, nifti):
        with pytest.raises(InputError, match="claims .* voxels .* in a file of"):
            read_image(path)
    segmentation = tmp_path / "huge.seg.nrrd"
    segmentation.write_bytes(b"NRRD0004\ntype: unsigned char\ndimension: 3\nsizes: 50000 50000 50000\n"
                             b"encoding: gzip\nSegment0_ID:=a\nSegment0_LabelValue:=1\nSegment0_Layer:=0\n\n"
                             + gzip.compress(bytes(1000)))
    with pytest.raises(InputError, match="claims .* voxels .* in a file of"):
        read_label(segmentation, read_image(raw.with_name("small.nrrd")))


def test_a_volume_too_large_for_the_memory_is_refused_up_front_with_an_estimate(tmp_path):
    # A real 16 GB raw volume as a sparse file: its header is honest, the machine is too small for it.
    data = tmp_path / "big.raw"
    with open(data, "wb") as stream:
        stream.truncate(2000 * 2000 * 2000 * 2)
    header = tmp_path / "big.nhdr"
    header.write_text("NRRD0004\ntype: short\ndimension: 3\nsizes: 2000 2000 2000\nendian: little\nencoding: raw\n"
                      "data file: big.raw\n\n")
    with pytest.raises(InputError, match=r"protecting it needs about \d+\.\d GB of memory, and .* GB are available"):
        read_image(header)


def test_absurd_label_values(tmp_path):
    image, label = blob_study((4, 32, 32))
    reference_path = tmp_path / "image.nrrd"
    sitk.WriteImage(sitk_image(image), str(reference_path))
    reference = read_image(reference_path)
    # Negative values are background, said so.
    negative = tmp_path / "negative.nrrd"
    sitk.WriteImage(sitk_image(label.astype(np.int16) - (label == 0) * 5), str(negative))
    loaded = read_label(negative, reference)
    assert any("negative values" in w for w in loaded.warnings)
    assert loaded.array.min() < 0
    np.testing.assert_array_equal(protect(image, loaded.array, settings=FAST).protected,
                                  protect(image, np.maximum(loaded.array, 0), settings=FAST).protected)
    # Integral values beyond int32 stored as reals: refused, not wrapped around.
    huge = tmp_path / "huge.nrrd"
    sitk.WriteImage(sitk_image(label.astype(np.float64) * 1e30), str(huge))
    with pytest.raises(InputError, match="beyond"):
        read_label(huge, reference)
    # An image given as the label map: thousands of classes refused before a network is built.
    with pytest.raises(InputError, match="different values"):
        protect(image, np.arange(image.size).reshape(image.shape) + 1, settings=FAST)
    # A label covering the whole image: protected, with a warning that it is not a region.
    result = protect(image, np.ones_like(label), settings=FAST)
    assert any("whole image" in w for w in result.report["warnings"])


def test_the_input_files_are_unchanged_by_refusals(tmp_path, study_files, capsys):
    before = {p: sha256(p) for p in study_files}
    profile = write_profile(tmp_path / "p.pt", generator_width=3000)
    code, err = protect_with_profile(study_files, profile, tmp_path, capsys)
    assert code == 2 and "generator width" in err
    assert {p: sha256(p) for p in study_files} == before


@pytest.fixture
def hostile(tmp_path):
    """A dataset of two small studies in images/ and labels/ under tmp_path/data, and an empty folder out/."""
    data = tmp_path / "data"
    for sub in ("images", "labels"):
        (data / sub).mkdir(parents=True)
    for seed, name in enumerate("ab"):
        image, label = blob_study((4, 32, 32), seed=seed)
        sitk.WriteImage(sitk_image(image), str(data / "images" / f"{name}.nrrd"), True)
        sitk.WriteImage(sitk_image(label), str(data / "labels" / f"{name}.nrrd"), True)
    (tmp_path / "out").mkdir()
    return tmp_path


def dataset_run(root, *extra, dataset="data"):
    """protect-dataset over the hostile dataset into out/ (one worker, no fitting)."""
    return ["protect-dataset", "--dataset", root / dataset, "--output-dir", root / "out", "--iterations", "0",
            "--device", "cpu", "--progress", "none", *extra]


def protect_run(root, *extra, image="data/images/a.nrrd", label="data/labels/a.nrrd", output="out/o.nrrd"):
    """protect of study a into out/ (JSON progress on stdout, so that a fit would show)."""
    return ["protect", "--image", root / image, "--label", root / label, "--output", root / output,
            "--iterations", "3", "--device", "cpu", "--progress", "json", *extra]


def link_manifest(root, *flags):
    (root / "out" / "manifest.jsonl").symlink_to(root / "data" / "images" / "a.nrrd")
    return dataset_run(root, "--workers", "1", *flags)


def manifest_folder(root):
    (root / "out" / "manifest.jsonl").mkdir()
    return dataset_run(root, "--workers", "1", "--overwrite")


def csv_list(root, text):
    (root / "data" / "list.csv").write_text(text)
    return dataset_run(root, "--workers", "1", dataset="data/list.csv")


def linked_subfolder(root):
    (root / "elsewhere").mkdir()
    (root / "out" / "images").symlink_to(root / "elsewhere")
    return dataset_run(root, "--workers", "1")


def linked_output(root):
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "x.nrrd").write_bytes(b"someone else's file")
    (root / "out" / "o.nrrd").symlink_to(root / "elsewhere" / "x.nrrd")
    return protect_run(root, "--overwrite")


def profile_window(root, window):
    write_profile(root / "p.pt", window=window)
    return protect_run(root, "--profile", root / "p.pt")


def damaged_segmentation(root, field, value):
    """A real .seg.nrrd of study a's label with one header field changed (Segment0_<field>)."""
    from test_label_io import ijk_to_lps

    image = sitk.ReadImage(str(root / "data" / "images" / "a.nrrd"))
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "data" / "labels" / "a.nrrd")))
    segmentation = slicerio.create_segmentation(label.shape[::-1], ijk_to_lps(image))
    slicerio.add_segment(segmentation, (label == 1).transpose(2, 1, 0), {"id": "lesion", "name": "lesion"})
    path = root / "data" / "a.seg.nrrd"
    slicerio.write_segmentation(str(path), segmentation)
    header, _, data = path.read_bytes().partition(b"\n\n")
    changed = re.sub(rb"Segment0_" + field.encode() + rb":=[^\n]*", f"Segment0_{field}:={value}".encode(), header)
    assert changed != header
    path.write_bytes(changed + b"\n\n" + data)
    return protect_run(root, label="data/a.seg.nrrd")


def http_scheduler(root, server):
    return dataset_run(root, "--scheduler", f"tcp://127.0.0.1:{server.server_address[1]}")


def mhd_data_collision(root):
    """An input header in.mhd whose data file is a.zraw, and an output a.mhd, whose data file would be a.zraw."""
    sitk.WriteImage(sitk.ReadImage(str(root / "data" / "images" / "a.nrrd")), str(root / "out" / "a.mhd"), True)
    (root / "out" / "a.mhd").rename(root / "out" / "in.mhd")
    return protect_run(root, "--overwrite", image="out/in.mhd", output="out/a.mhd")


def rescaled(root, factor, dtype=np.float64):
    """Study a's image times `factor` (float32: its values spread over [-factor, factor]) as data/images/x.nrrd."""
    values = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "data" / "images" / "a.nrrd"))).astype(np.float64)
    if dtype == np.float32:
        values = (values - values.min()) / np.ptp(values) * 2 - 1
    sitk.WriteImage(sitk_image((values * factor).astype(dtype)), str(root / "data" / "images" / "x.nrrd"))
    return protect_run(root, image="data/images/x.nrrd")


def dicom_study(root):
    """A CT series in data/ct/ (its files by slice) with a SEG (data/seg.dcm) and an RTSTRUCT (data/rt.dcm) of its
    lesion and vessel."""
    hu, masks = ct_study()
    uids = new_study()
    files = write_ct_series(root / "data" / "ct", hu, uids)
    write_seg(root / "data" / "seg.dcm", files, masks)
    write_rtstruct(root / "data" / "rt.dcm", files, masks, uids)
    return files


def damaged_contour(root, change):
    """The RTSTRUCT with its first contour's ContourData replaced by change(that data), written unvalidated."""
    dicom_study(root)
    dataset = pydicom.dcmread(root / "data" / "rt.dcm")
    contour = dataset.ROIContourSequence[0].ContourSequence[0]
    with pydicom.config.disable_value_validation():
        contour["ContourData"].value = change([str(v) for v in contour.ContourData])
        dataset.save_as(root / "data" / "rt.dcm")
    return protect_run(root, image="data/ct", label="data/rt.dcm", output="out/series")


def over_another_series(root):
    """--overwrite into out/series, which holds a series of 10 slices: the new one of 8 would replace 8 of them."""
    dicom_study(root)
    hu, _ = ct_study(shape=(10, 48, 56), seed=1)
    write_ct_series(root / "out" / "series", hu, new_study())
    return protect_run(root, "--overwrite", image="data/ct", label="data/seg.dcm", output="out/series")


def series_output_linking_a_slice(root):
    """--overwrite into out/series, whose file of one slice's name links to that input slice."""
    files = dicom_study(root)
    (root / "out" / "series").mkdir()
    (root / "out" / "series" / files[3].name).symlink_to(files[3])
    return protect_run(root, "--overwrite", image="data/ct", label="data/seg.dcm", output="out/series")


def truncated_slice(root):
    """The series' last slice cut to 300 bytes (within its header): the series has 7 readable slices of 8."""
    last = dicom_study(root)[-1]
    last.write_bytes(last.read_bytes()[:300])
    return protect_run(root, image="data/ct", label="data/seg.dcm", output="out/series")


def named_pipe(root, role, name="pipe.nrrd"):
    """A named pipe (that nothing ever writes) in place of study a's image or label; or as the dataset."""
    os.mkfifo(root / "data" / name)
    if role == "dataset":
        return dataset_run(root, "--workers", "1", dataset=f"data/{name}")
    return protect_run(root, **{role: f"data/{name}"})


def gzip_bomb(root, zeros=2**26):
    """Study a's image as .nii.gz, its gzip stream followed by `zeros` zero bytes in a second member: 64 KB more
    on disk, within what deflate can hold; a reader that decompresses the whole stream holds all of them."""
    sitk.WriteImage(sitk.ReadImage(str(root / "data" / "images" / "a.nrrd")), str(root / "data" / "bomb.nii"))
    with open(root / "data" / "bomb.nii.gz", "wb") as stream:
        stream.write(gzip.compress((root / "data" / "bomb.nii").read_bytes()))
        packer = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        for _ in range(zeros // 2**22):
            stream.write(packer.compress(bytes(2**22)))
        stream.write(packer.flush())
    return protect_run(root, image="data/bomb.nii.gz")


class AnswersHttp(socketserver.BaseRequestHandler):
    """A server that answers every connection like an HTTP server refusing it, then hangs up."""

    def handle(self):
        self.request.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture(scope="module")
def http_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), AnswersHttp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


HOSTILE = {
    "manifest links to an input, --overwrite": (lambda root, _: link_manifest(root, "--overwrite"), "is an input file"),
    "manifest links to an input, --resume": (lambda root, _: link_manifest(root, "--resume"), "is an input file"),
    "CSV lists an image twice": (lambda root, _: csv_list(root, "image,label\nimages/a.nrrd,labels/a.nrrd\n"
                                                           "images/a.nrrd,labels/b.nrrd\n"), "twice"),
    "CSV gives an image as its own label": (lambda root, _: csv_list(root, "image,label\n"
                                                                     "images/a.nrrd,images/a.nrrd\n"),
                                            "as its own label"),
    "CSV has two image columns": (lambda root, _: csv_list(root, "image,label,image\n"
                                                            "images/a.nrrd,labels/a.nrrd,images/b.nrrd\n"),
                                  "2 columns named image"),
    "--workers 10000": (lambda root, _: dataset_run(root, "--workers", "10000", "--output-dir", root / "new"),
                        "must be from 1 to"),
    "--workers 0": (lambda root, _: dataset_run(root, "--workers", "0", "--output-dir", root / "new"),
                    "must be from 1 to"),
    "a subfolder of OUT links elsewhere": (lambda root, _: linked_subfolder(root), "outside"),
    "the output links outside its folder": (lambda root, _: linked_output(root), "symbolic link"),
    "profile window is a list": (lambda root, _: profile_window(root, [40, 400]), "window"),
    "protect-dataset into a new OUT with a bad profile": (
        lambda root, _: (write_profile(root / "p.pt", window=[40, 400]),
                         dataset_run(root, "--workers", "1", "--profile", root / "p.pt", "--output-dir",
                                     root / "new"))[1], "window"),
    "profile window is a number": (lambda root, _: profile_window(root, 40), "window"),
    "profile window is a mapping": (lambda root, _: profile_window(root, {"level": 40}), "window"),
    "segment in layer 999": (lambda root, _: damaged_segmentation(root, "Layer", 999), "layer 999"),
    "segment value -1": (lambda root, _: damaged_segmentation(root, "LabelValue", -1), "label value -1"),
    "segment value 70000": (lambda root, _: damaged_segmentation(root, "LabelValue", 70000), "label value 70000"),
    "an HTTP server as --scheduler": (http_scheduler, "did not answer as a Dask scheduler"),
    "--epsilon 4/255HU": (lambda root, _: protect_run(root, "--epsilon", "4/255HU"), "mixes a fraction"),
    "--epsilon 1e-300": (lambda root, _: protect_run(root, "--epsilon", "1e-300"), "nothing would change"),
    "--window 40,1e-300": (lambda root, _: protect_run(root, "--window", "40,1e-300"), "nothing would change"),
    "an .mhd output's data file is the input's": (lambda root, _: mhd_data_collision(root), "data file of --output"),
    "float64 values beyond float32's range": (lambda root, _: rescaled(root, 1e40), "accepts values within +-1.7e+38"),
    "float32 values at +-3.4e38": (lambda root, _: rescaled(root, np.finfo(np.float32).max, np.float32),
                                   "accepts values within +-1.7e+38"),
    "values of 1e300": (lambda root, _: rescaled(root, 1e300), "accepts values within +-1.7e+38"),
    "values of 1e-300": (lambda root, _: rescaled(root, 1e-300), "accepts a span of at least 1.18e-38"),
    "a DICOM slice truncated to 300 bytes": (lambda root, _: truncated_slice(root), "damaged or truncated DICOM"),
    "RTSTRUCT ContourData not in triplets": (lambda root, _: damaged_contour(root, lambda data: data[:-1]),
                                             "not x, y, z triplets"),
    "NaN in RTSTRUCT ContourData": (lambda root, _: damaged_contour(root, lambda data: ["NaN"] + data[1:]),
                                    "not x, y, z triplets"),
    "a DICOM output inside the input series' folder": (
        lambda root, _: (dicom_study(root), protect_run(root, image="data/ct", label="data/seg.dcm",
                                                         output="data/ct/protected"))[1], "or inside it"),
    "--overwrite into a folder of another series": (lambda root, _: over_another_series(root),
                                                    "holds 2 files that the new series would not replace"),
    "a DICOM output folder holding a link to an input slice": (lambda root, _: series_output_linking_a_slice(root),
                                                               "is an input file"),
    "a gzip bomb as --image": (lambda root, _: gzip_bomb(root), "decompression bomb"),
    "a named pipe as --image": (lambda root, _: named_pipe(root, "image"), "not a regular file"),
    "a named pipe as --label": (lambda root, _: named_pipe(root, "label"), "not a regular file"),
    "a named pipe as a .seg.nrrd --label": (lambda root, _: named_pipe(root, "label", "pipe.seg.nrrd"),
                                            "not a regular file"),
    "a named pipe as --dataset": (lambda root, _: named_pipe(root, "dataset", "pipe.csv"), "not a regular file"),
    "OUT/manifest.jsonl is a folder": (lambda root, _: manifest_folder(root), "not a regular file"),
}


def snapshot(root):
    """Every path under root (links not followed) -> the SHA-256 of a file, or its kind."""
    found = {}
    for folder, subfolders, files in os.walk(root):
        for name in subfolders + files:
            path = Path(folder) / name
            found[path] = ("link", os.readlink(path)) if path.is_symlink() else (
                sha256(path) if path.is_file() else "folder")
    return found


def command_line(argv, timeout=120, **options):
    """`python -m UMedProtectLib` on this checkout in its own process, one thread; killed after `timeout` s."""
    environment = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "UMedProtectLib", *map(str, argv)], capture_output=True, text=True,
                          env=environment, timeout=timeout, **options)


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_cases_exit_2_in_one_line_and_change_nothing(hostile, http_server, case):
    make, message = HOSTILE[case]
    argv = make(hostile, http_server)
    before = snapshot(hostile)
    done = command_line(argv)  # a hang (a named pipe read forever) fails as a timeout
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("umed-protect: error: "), done.stderr
    assert message in lines[0] and not re.search(r"[A-Z][a-z]+(Error|Exception)\b", lines[0]), lines[0]
    assert '"stage": "fit"' not in done.stdout  # refused before any fitting
    assert snapshot(hostile) == before  # inputs unchanged, no file or folder left behind (OUT not even created)


def test_a_full_or_closed_standard_output_says_what_is_on_disk(hostile):
    environment = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), OMP_NUM_THREADS="1")
    argv = [sys.executable, "-m", "UMedProtectLib"] + [str(a) for a in protect_run(hostile)]
    # stdout on a full disk: the outputs are written (the summary comes after them), then the summary fails; the
    # exit code says the outputs are there (it was 2, "nothing done", with o.nrrd written).
    with open("/dev/full", "w") as full:
        done = subprocess.run([*argv, "--progress", "none"], stdout=full, stderr=subprocess.PIPE, text=True,
                              env=environment, timeout=300)
    assert done.returncode == 0 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("umed-protect: warning: the outputs were written, but not their summary: cannot "
                                  "write to the standard output (No space left"), done.stderr
    assert os.listdir(hostile / "out") == ["o.nrrd"]
    (hostile / "out" / "o.nrrd").unlink()
    # `--progress json | head -1`: the reader leaves after one line; the run stops there and writes nothing.
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    assert json.loads(process.stdout.readline())["stage"] == "prepare"
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=300) == 2 and err.count("\n") == 1, err
    assert err.startswith("umed-protect: error: cannot write to the standard output (Broken pipe)"), err
    assert os.listdir(hostile / "out") == []


def test_the_visibility_warning_compares_the_budget_as_resolved_on_the_study(hostile, capsys):
    # Study a's robust range is a few hundred units wide: 10 units are 1/40 of it, 100 units a quarter.
    for budget, visible in (("10units", False), ("100units", True)):
        report = hostile / "out" / f"{budget}.json"
        code = main([str(a) for a in protect_run(hostile, "--epsilon", budget, "--report", report, "--overwrite")])
        assert code == 0, capsys.readouterr().err
        data = json.loads(report.read_text())
        warned = [w for w in data["warnings"] if "above 16/255" in w]
        assert bool(warned) == visible == (data["epsilon"] > 16 / 255), (budget, data["epsilon"], warned)
        if visible:
            assert warned[0].startswith(f"epsilon {data['epsilon'] * 255:.3g}/255 ")
        assert ("above 16/255" in capsys.readouterr().err) == visible  # the summary, on stderr beside JSON progress


def test_quiet_rim_on_a_float64_image_stays_within_the_budget_and_reports_the_change_exactly(tmp_path, capsys):
    image, label = blob_study((4, 32, 32), dtype=np.float64)
    paths = tmp_path / "f.nrrd", tmp_path / "f_label.nrrd"
    sitk.WriteImage(sitk_image(image), str(paths[0]))
    sitk.WriteImage(sitk_image(label), str(paths[1]))
    out, report = tmp_path / "p.nrrd", tmp_path / "r.json"
    code = main(["protect", "--image", str(paths[0]), "--label", str(paths[1]), "--output", str(out), "--report",
                 str(report), "--design", "quiet-rim", "--iterations", "0", "--device", "cpu", "--progress", "none"])
    assert code == 0, capsys.readouterr().err
    protected = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    assert protected.dtype == np.float64
    change = np.abs(protected - image).max()
    data = json.loads(report.read_text())
    assert 0 < change <= data["epsilon_native"]  # float32 arithmetic overshot it by about 1e-7 of it
    assert data["linf_native"] == change
