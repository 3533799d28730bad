from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _slow_job import slow_job

import fftconv
from fftconv import io
from fftconv import kernels as K
from fftconv.cli import main

PIL = pytest.importorskip("PIL.Image")
tifffile = pytest.importorskip("tifffile")

FFTCONV = [sys.executable, "-m", "fftconv"]


def _run(*args, **kw):
    return subprocess.run(
        FFTCONV + [str(a) for a in args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        **kw,
    )


def _cli(capsys, *args):
    """main() in this process: (exit code, stderr)."""
    try:
        rc = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def photo():
    from fftconv._demo import photo_rgb

    return photo_rgb(96)


def _expected(img, kernel, boundary="symmetric", channel_axis=-1):
    ref = fftconv.convolve(
        img.astype(np.float64),
        kernel,
        "same",
        boundary,
        channel_axis=channel_axis if img.ndim == 3 else None,
    )
    return np.clip(np.rint(ref), 0, 255)


def test_apply_png_jpeg_tiff_subprocess(tmp_path, photo):
    PIL.fromarray(photo).save(tmp_path / "in.png")
    PIL.fromarray(photo).save(tmp_path / "in.jpg", quality=95)
    tifffile.imwrite(tmp_path / "in.tif", photo[..., 1], tile=(32, 32), compression="zlib")
    r = _run("apply", tmp_path / "in.png", tmp_path / "out.png", "--kernel", "gaussian:sigma=2")
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout
    out = io.open_image(tmp_path / "out.png")
    assert out.dtype == np.uint8 and out.shape == photo.shape
    assert np.abs(out - _expected(photo, K.gaussian(2))).max() <= 1
    r = _run("apply", tmp_path / "in.jpg", tmp_path / "out.jpg", "-k", "box:5", "--quiet")
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert io.open_image(tmp_path / "out.jpg").shape == photo.shape
    r = _run(
        "apply",
        tmp_path / "in.tif",
        tmp_path / "out.tif",
        "-k",
        "laplace",
        "--boundary",
        "nearest",
        "--dtype",
        "float32",
        "-q",
    )
    assert r.returncode == 0, r.stderr
    got = io.open_image(tmp_path / "out.tif")
    assert got.dtype == np.float32
    ref = fftconv.convolve(photo[..., 1].astype(np.float64), K.laplace(), "same", "nearest")
    np.testing.assert_allclose(got, ref, atol=1e-5 * np.abs(ref).max())
    assert sorted(os.listdir(tmp_path)) == [
        "in.jpg",
        "in.png",
        "in.tif",
        "out.jpg",
        "out.png",
        "out.tif",
    ]


def test_apply_npy_correlate_modes_and_dtypes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    img = rng.random((60, 70))
    np.save(tmp_path / "in.npy", img)
    k = rng.random((5, 8))
    np.save(tmp_path / "k.npy", k)
    for mode in ("full", "valid"):
        rc, err = _cli(
            capsys,
            "apply",
            tmp_path / "in.npy",
            tmp_path / f"{mode}.npy",
            "-k",
            tmp_path / "k.npy",
            "--mode",
            mode,
            "--boundary",
            "wrap",
            "--correlate",
            "--max-memory",
            "16GB",
            "-q",
        )  # in-process: pytest itself is large
        assert rc == 0, err
        got = np.load(tmp_path / f"{mode}.npy")
        ref = fftconv.correlate(img, k, mode, "wrap")
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, ref, atol=1e-10 * np.abs(ref).max())


def test_rgba_alpha_is_kept(tmp_path, capsys, photo):
    alpha = np.linspace(0, 255, photo.shape[1]).astype(np.uint8)[None, :].repeat(96, 0)
    rgba = np.dstack([photo, alpha])
    PIL.fromarray(rgba).save(tmp_path / "in.png")
    for corr in ([], ["--correlate"]):
        rc, err = _cli(
            capsys,
            "apply",
            tmp_path / "in.png",
            tmp_path / "out.png",
            "-k",
            "sobel-x",
            "--force",
            "-q",
            *corr,
        )
        assert rc == 0, err
        out = io.open_image(tmp_path / "out.png")
        np.testing.assert_array_equal(out[..., 3], alpha)


def test_complex_scharr_writes_the_magnitude(tmp_path, capsys, photo):
    grey = np.ascontiguousarray(photo[..., 0])
    PIL.fromarray(grey).save(tmp_path / "in.png")
    rc, err = _cli(
        capsys,
        "apply",
        tmp_path / "in.png",
        tmp_path / "edges.npy",
        "-k",
        "scharr",
        "--dtype",
        "float32",
        "-q",
    )
    assert rc == 0, err
    ref = np.abs(fftconv.convolve(grey.astype(np.float64), K.scharr(), "same", "symmetric"))
    np.testing.assert_allclose(np.load(tmp_path / "edges.npy"), ref, atol=1e-5 * ref.max())


def test_force_semantics(tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.ones((20, 20), np.float32))
    np.save(tmp_path / "out.npy", np.zeros(3))
    rc, err = _cli(capsys, "apply", tmp_path / "in.npy", tmp_path / "out.npy", "-k", "box:3")
    assert rc == 2 and "exists" in err and "--force" in err and len(err.splitlines()) == 1
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), np.zeros(3))
    rc, err = _cli(
        capsys, "apply", tmp_path / "in.npy", tmp_path / "out.npy", "-k", "box:3", "--force", "-q"
    )
    assert rc == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), np.ones((20, 20)), rtol=1e-6)
    rc, err = _cli(
        capsys, "apply", tmp_path / "in.npy", tmp_path / "in.npy", "-k", "box:3", "--force"
    )
    assert rc == 2 and "never modifies its input" in err
    np.testing.assert_array_equal(np.load(tmp_path / "in.npy"), np.ones((20, 20)))


@pytest.mark.parametrize(
    "args, words",
    [
        (["-k", "gausian:sigma=3"], "did you mean 'gaussian'"),
        (["-k", "gaussian"], "needs sigma"),
        (["-k", "box:abc"], "not a number"),
        (["-k", "nothere.npy"], "no such .npy file"),
        (["-k", "box:3", "--boundary", "reflect"], "ambiguous"),
        (["-k", "box:3", "--max-memory", "lots"], "not a size"),
        (["-k", "box:3", "--max-memory", "1MB"], "too small"),
        (["-k", "box:3", "--dtype", "int7"], "not one of"),
        (["-k", "box:3", "--threads", "0"], "must be >= 1"),
        (["-k", "box:40", "--mode", "valid"], "at least as large"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, words):
    np.save(tmp_path / "in.npy", np.ones((20, 20), np.float32))
    rc, err = _cli(capsys, "apply", tmp_path / "in.npy", tmp_path / "out.npy", *args)
    assert rc == 2
    assert words in err, err
    assert not (tmp_path / "out.npy").exists()
    assert os.listdir(tmp_path) == ["in.npy"]


def test_missing_input_unwritable_output_and_formats(tmp_path, capsys):
    rc, err = _cli(capsys, "apply", tmp_path / "none.png", tmp_path / "o.png", "-k", "box:3")
    assert rc == 2 and "does not exist" in err and len(err.splitlines()) == 1
    np.save(tmp_path / "in.npy", np.ones((20, 20), np.float32))
    rc, err = _cli(capsys, "apply", tmp_path / "in.npy", tmp_path / "no/dir/o.npy", "-k", "box:3")
    assert rc == 2 and "does not exist" in err
    rc, err = _cli(capsys, "apply", tmp_path / "in.npy", tmp_path / "o.jpg", "-k", "box:3")
    assert rc == 2 and "JPEG cannot hold" in err and "float32" in err
    rc, err = _cli(capsys, "apply", tmp_path / "in.npy", tmp_path / "o.bmp", "-k", "box:3")
    assert rc == 2 and "unknown image format" in err
    rc, err = _cli(capsys, "apply", tmp_path / "in.npy", tmp_path, "-k", "box:3")
    assert rc == 2
    assert os.listdir(tmp_path) == ["in.npy"]


def test_max_pixels_guard(tmp_path, capsys, photo):
    PIL.fromarray(photo).save(tmp_path / "in.png")
    rc, err = _cli(
        capsys,
        "apply",
        tmp_path / "in.png",
        tmp_path / "o.png",
        "-k",
        "box:3",
        "--max-pixels",
        "1000",
    )
    assert rc == 2 and "--max-pixels 9216" in err
    rc, err = _cli(
        capsys,
        "apply",
        tmp_path / "in.png",
        tmp_path / "o.png",
        "-k",
        "box:3",
        "--max-pixels",
        "9216",
        "-q",
    )
    assert rc == 0, err


def test_plan_and_help(tmp_path, capsys):
    assert main(["plan", "65536x65536", "-k", "gaussian:sigma=3.75", "--max-memory", "2GB"]) == 0
    out = capsys.readouterr().out
    assert "tiles" in out and "65536x65536" in out and "31x31" in out
    np.save(tmp_path / "in.npy", np.ones((50, 40, 3), np.uint16))
    assert main(["plan", str(tmp_path / "in.npy"), "-k", "box:3"]) == 0
    assert "50x40x3 uint16" in capsys.readouterr().out
    r = _run("apply", "--help")
    assert r.returncode == 0 and "--kernel" in r.stdout and "examples:" in r.stdout
    assert "--force" in r.stdout and "--max-memory" in r.stdout
    r = _run("--help")
    assert r.returncode == 0 and "apply" in r.stdout and "demo" in r.stdout


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_leaves_no_output(tmp_path, sig):
    args = slow_job(tmp_path)
    proc = subprocess.Popen(
        FFTCONV + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 60
    while time.time() < deadline and not any("fftconv-tmp" in n for n in os.listdir(tmp_path)):
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert not (tmp_path / "out.npy").exists()
    if sig == signal.SIGTERM:
        assert proc.returncode == 143
        assert os.listdir(tmp_path) == ["in.npy"]  # the temporary file is removed too


def test_demo_writes_images(tmp_path):
    r = _run("demo", "--size", "96", "--out", tmp_path, "-q")
    assert r.returncode == 0, r.stderr
    for name in ("photo.png", "blur.png", "edges.png", "sharpen.png"):
        assert (tmp_path / name).exists()
    assert "tiled plan" in r.stdout and "Mpixel/s" in r.stdout
    r = _run("demo", "--size", "4")
    assert r.returncode == 2 and "--size" in r.stderr


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs a place nobody can write")
def test_output_where_no_file_can_be_created(tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.ones((20, 20), np.uint8))
    for name in ("out.npy", "out.png"):
        rc, err = _cli(capsys, "apply", tmp_path / "in.npy", f"/proc/{name}", "-k", "box:3")
        assert rc == 2 and "cannot create a file" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["-k", "gaussian:sigma=1e308"], "gaussian:sigma=1e308"),
        (["-k", "box:1000000"], "1000000 x 1000000"),
        (["-k", "disk:radius=1e6"], "2000001 x 2000001"),
        (["-k", "motion:length=1e9"], "motion:length=1e9"),
        (["-k", "box:20000"], "20000 x 20000"),
        (["-k", "gaussian:sigma=3000"], "24001 x 24001"),
        (["-k", "box:3000", "--max-memory", "200MB"], "a quarter of max_memory"),
        (["-k", "box:5", "--max-memory", "1e400GB"], "--max-memory"),
        (["-k", "box:5", "--fillvalue", "nan", "--boundary", "fill"], "fillvalue=nan"),
        (["-k", "box:5", "--fillvalue", "inf", "--boundary", "fill"], "fillvalue=inf"),
    ],
)
def test_bad_arguments_get_one_line_naming_them(tmp_path, capsys, extra, needle):
    np.save(tmp_path / "in.npy", np.ones((40, 40), np.uint8))
    rc, err = _cli(capsys, "apply", tmp_path / "in.npy", tmp_path / "out.npy", *extra)
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert os.listdir(tmp_path) == ["in.npy"]


def test_nan_fillvalue_with_a_float_output_fills_nan(tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.ones((10, 10), np.float32))
    rc, err = _cli(
        capsys,
        "apply",
        tmp_path / "in.npy",
        tmp_path / "out.npy",
        "-k",
        "box:3",
        "--fillvalue",
        "nan",
        "--boundary",
        "fill",
        "-q",
    )
    assert rc == 0 and err == ""
    out = np.load(tmp_path / "out.npy")
    assert np.isnan(out[0]).all() and np.isfinite(out[1:-1, 1:-1]).all()


def test_kernel_and_input_files_that_would_be_misread(tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.ones((10, 10), np.uint8))
    np.save(tmp_path / "row.npy", np.ones(5))
    rc, err = _cli(
        capsys, "apply", tmp_path / "in.npy", tmp_path / "o.npy", "-k", tmp_path / "row.npy"
    )
    assert rc == 2 and "(1, 5)" in err and len(err.splitlines()) == 1
    if np.dtype(np.longdouble).itemsize > 8:
        np.save(tmp_path / "ld.npy", np.ones((10, 10), np.longdouble))
        rc, err = _cli(capsys, "apply", tmp_path / "ld.npy", tmp_path / "o.npy", "-k", "box:3")
        assert rc == 2 and "long double" in err and len(err.splitlines()) == 1
        rc, err = _cli(
            capsys,
            "apply",
            tmp_path / "ld.npy",
            tmp_path / "o.npy",
            "-k",
            "box:3",
            "--dtype",
            "float64",
            "-q",
        )
        assert rc == 0 and np.load(tmp_path / "o.npy").dtype == np.float64


def test_threads_beyond_the_cores_are_capped_with_a_word(tmp_path, capsys):
    from fftconv._problem import default_threads

    np.save(tmp_path / "in.npy", np.ones((64, 64), np.float32))
    rc, err = _cli(capsys, "plan", tmp_path / "in.npy", "-k", "box:3", "--threads", "100000")
    assert rc == 0 and f"using {default_threads()}" in err and len(err.splitlines()) == 1
    r = _run(
        "apply", tmp_path / "in.npy", tmp_path / "o.npy", "-k", "box:3", "--threads", "100000", "-q"
    )
    assert r.returncode == 0 and r.stderr.startswith("fftconv: warning: threads=100000")
    assert len(r.stderr.splitlines()) == 1


def test_truncated_tiff_and_huge_zarr_claims_are_one_line_errors(tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    x = (np.arange(300 * 400) % 251).astype(np.uint8).reshape(300, 400)
    tifffile.imwrite(tmp_path / "a.tif", x, rowsperstrip=16)
    data = (tmp_path / "a.tif").read_bytes()
    (tmp_path / "a.tif").write_bytes(data[: len(data) // 2])
    rc, err = _cli(capsys, "apply", tmp_path / "a.tif", tmp_path / "o.tif", "-k", "box:3")
    assert rc == 2 and "truncated" in err and len(err.splitlines()) == 1
    zarr.open_array(
        str(tmp_path / "big.zarr"),
        mode="w",
        shape=(10**6, 10**6),
        chunks=(1000, 1000),
        dtype="uint8",
    )
    for cmd in ("apply", "plan"):
        args = [tmp_path / "big.zarr"] + ([tmp_path / "o.zarr"] if cmd == "apply" else [])
        rc, err = _cli(capsys, cmd, *args, "-k", "box:3")
        assert rc == 2 and "max_stored_pixels" in err and len(err.splitlines()) == 1, err
    # --max-pixels raises the limit for every format; the disk check then refuses a
    # terabyte output before any tile runs.
    rc, err = _cli(
        capsys,
        "apply",
        tmp_path / "big.zarr",
        tmp_path / "o.zarr",
        "-k",
        "box:3",
        "--max-pixels",
        str(10**12),
    )
    assert rc == 2 and "not enough disk space" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o.zarr").exists()


def test_corrupt_tile_half_way_is_one_line_and_leaves_nothing(tmp_path):
    pytest.importorskip("imagecodecs")
    x = (np.arange(300 * 400) % 251).astype(np.uint8).reshape(300, 400)
    tifffile.imwrite(tmp_path / "a.tif", x, tile=(64, 64), compression="zlib")
    with tifffile.TiffFile(tmp_path / "a.tif") as t:
        off, n = t.pages[0].dataoffsets[5], t.pages[0].databytecounts[5]
    data = bytearray((tmp_path / "a.tif").read_bytes())
    data[off : off + n] = b"\0" * n
    (tmp_path / "a.tif").write_bytes(bytes(data))
    r = _run("apply", tmp_path / "a.tif", tmp_path / "o.tif", "-k", "box:3", "-q")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 1 and "DeflateError" in r.stderr
    assert os.listdir(tmp_path) == ["a.tif"]


# --- apply IN... --out-dir DIR ----------------------------------------------------------------


def test_apply_many_files_directory_and_glob(tmp_path, photo, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        PIL.fromarray(np.roll(photo, 7 * i, axis=1)).save(src / f"p{i}.png")
    extra = tmp_path / "extra"
    extra.mkdir()
    np.save(extra / "grey.npy", photo[..., 0].astype(np.float32))
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    rc, err = _cli(
        capsys, "apply", src, str(extra / "*.npy"), "--out-dir", out, "-k", "box:3", "--quiet"
    )
    assert rc == 0, err
    assert sorted(os.listdir(out)) == ["grey.npy", "p0.png", "p1.png", "p2.png"]
    for i in range(3):
        got = io.open_image(out / f"p{i}.png")
        want = _expected(np.roll(photo, 7 * i, axis=1), K.box(3))
        assert np.abs(got.astype(float) - want).max() <= 1
    # never overwritten without --force: every file fails, with its reason
    before = (out / "p0.png").read_bytes()
    rc, err = _cli(capsys, "apply", src, "--out-dir", out, "-k", "box:5", "--quiet")
    assert rc == 2 and err.count("exists") == 3 and "3 of 3 file(s) failed" in err
    assert (out / "p0.png").read_bytes() == before
    rc, err = _cli(capsys, "apply", src, "--out-dir", out, "-k", "box:5", "--quiet", "--force")
    assert rc == 0, err
    assert (out / "p0.png").read_bytes() != before


def test_apply_many_reports_a_bad_file_and_goes_on(tmp_path, photo, capsys):
    PIL.fromarray(photo).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    rc, err = _cli(
        capsys,
        "apply",
        tmp_path / "bad.png",
        tmp_path / "good.png",
        tmp_path / "missing.png",
        "--out-dir",
        out,
        "-k",
        "box:3",
    )
    assert rc == 2
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 2 and "bad.png" in lines[0] and "missing.png" in lines[1]
    assert os.listdir(out) == ["good.png"]


def test_apply_many_progress_lines_are_not_written_into_the_bar(tmp_path, photo):
    pytest.importorskip("tqdm")
    for i in range(2):
        PIL.fromarray(photo).save(tmp_path / f"p{i}.png")
    r = _run(
        "apply",
        tmp_path / "p0.png",
        tmp_path / "p1.png",
        "--out-dir",
        tmp_path / "o",
        "-k",
        "box:3",
    )
    assert r.returncode == 0, r.stderr
    # tqdm.write clears the bar before a line and redraws it after: each "wrote" line
    # starts a line of its own.
    wrote = [ln for ln in r.stdout.splitlines() if "wrote" in ln]
    assert len(wrote) == 2 and all(ln.startswith("fftconv: wrote") for ln in wrote)


def test_apply_two_paths_without_out_dir(tmp_path, capsys):
    rc, err = _cli(
        capsys, "apply", tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png", "-k", "box:3"
    )
    assert rc == 2 and "IN and OUT" in err


def test_precompile_command(capsys):
    rc = main(
        ["precompile", "--dtypes", "float64", "--channels", "1", "--no-aot", "--no-calibrate"]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "done in" in out or "numba is not installed" in out


@pytest.mark.parametrize("as_command", [True, False])
def test_the_command_starts_numpy_without_a_blas_thread_pool(as_command):
    """The `fftconv` command sets OPENBLAS_NUM_THREADS=1 (unless the user set it) before
    numpy loads: OpenBLAS's idle threads would spin on the streaming engine's cores.
    `import fftconv` in a library user's process leaves the environment alone."""
    code = (
        ("import sys; sys.argv = ['fftconv']; " if as_command else "")
        + "import os, fftconv, numpy; "
        "print(os.environ.get('OPENBLAS_NUM_THREADS'), "
        "len(os.listdir('/proc/self/task')) if os.path.isdir('/proc/self/task') else 1)"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    blas, threads = res.stdout.split()
    assert blas == ("1" if as_command else "None")
    if as_command:
        assert threads == "1"  # no OpenBLAS worker (nor any other thread) at start


def test_the_entry_point_freezes_the_heap_before_the_interpreter_exits(monkeypatch, capsys):
    """`cli.run` (the console script and ``python -m fftconv``) runs the command, then
    `gc.freeze`s, so that the shutdown's collections have nothing to traverse."""
    import gc

    from fftconv import cli

    monkeypatch.setattr(sys, "argv", ["fftconv", "plan", "512x512", "--kernel", "box:3"])
    gc.unfreeze()
    try:
        assert cli.run() == 0
        assert "direct" in capsys.readouterr().out
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
